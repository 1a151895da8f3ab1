use super::{load, load_err};

#[test]
fn snake_case_keys_are_accepted_at_every_level() {
    let config = load(
        r#"{
          "agents": { "defaults": { "max_tool_iterations": 7, "context_window_tokens": 8192 } },
          "tools": { "restrict_to_workspace": false, "exec": { "max_output_chars": 99 } },
          "api": { "shutdown_grace_s": 3 },
          "providers": { "local": { "api_base": "http://localhost:11434/v1" } }
        }"#,
        &[],
    )
    .expect("loads");
    assert_eq!(config.agents.defaults.max_tool_iterations, 7);
    assert_eq!(config.agents.defaults.context_window_tokens, 8192);
    assert!(!config.tools.restrict_to_workspace);
    assert_eq!(config.tools.exec.max_output_chars, 99);
    assert_eq!(config.api.shutdown_grace_s, 3);
    assert_eq!(
        config.providers["local"].api_base.as_deref(),
        Some("http://localhost:11434/v1")
    );
}

#[test]
fn provider_and_header_names_are_kept_as_written() {
    let config = load(
        r#"{ "providers": {
            "my_vllm": { "extra_headers": { "X-Title": "facio", "x_custom_id": "7" } },
            "OpenRouter": { "apiKey": "k" }
        } }"#,
        &[],
    )
    .expect("loads");
    let names: Vec<&str> = config.providers.keys().map(String::as_str).collect();
    assert_eq!(names, ["OpenRouter", "my_vllm"]);
    let headers: Vec<&str> = config.providers["my_vllm"]
        .extra_headers
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(headers, ["X-Title", "x_custom_id"]);
}

#[test]
fn unknown_key_names_the_full_path_and_suggests() {
    let message = load_err(
        r#"{ "agents": { "defaults": { "maxToolIteration": 5 } } }"#,
        &[],
    );
    assert!(
        message.ends_with(
            "agents.defaults.maxToolIteration: unknown field, did you mean maxToolIterations?"
        ),
        "{message}"
    );
    let message = load_err(r#"{ "providers": { "openai": { "api_kye": "x" } } }"#, &[]);
    assert!(
        message.ends_with("providers.openai.apiKye: unknown field, did you mean apiKey?"),
        "{message}"
    );
}

#[test]
fn unknown_key_far_from_any_field_lists_the_fields() {
    let message = load_err(r#"{ "api": { "bananas": 1 } }"#, &[]);
    assert!(
        message.contains("api.bananas: unknown field, expected one of: a2aToken, bodyIdleTimeoutS, headerReadTimeoutS, host, managementToken, metricsToken, port, shutdownGraceS"),
        "{message}"
    );
    let message = load_err(r#"{ "colour": "blue" }"#, &[]);
    assert!(message.contains(": colour: unknown field"), "{message}");
}

#[test]
fn two_spellings_of_one_key_are_refused() {
    let message = load_err(
        r#"{ "api": { "shutdownGraceS": 1, "shutdown_grace_s": 2 } }"#,
        &[],
    );
    assert!(
        message.contains("api.shutdownGraceS: given twice"),
        "{message}"
    );
}

#[test]
fn type_errors_name_the_key_path() {
    let message = load_err(r#"{ "api": { "port": "abc" } }"#, &[]);
    assert!(
        message.ends_with(r#"api.port: invalid type: string "abc", expected u16"#),
        "{message}"
    );
    let message = load_err(
        r#"{ "tools": { "exec": { "denyPatterns": ["ok", 3] } } }"#,
        &[],
    );
    assert!(
        message.contains("tools.exec.denyPatterns[1]: invalid type: integer `3`"),
        "{message}"
    );
    let message = load_err(r#"{ "logging": { "format": "xml" } }"#, &[]);
    assert!(
        message.contains("logging.format: unknown variant `xml`"),
        "{message}"
    );
}

#[test]
fn tenant_rates_and_model_prices_are_keyed_by_user_names() {
    let config = load(
        r#"{
          "limits": { "tenants": { "acme_corp": 120 }, "tokens_per_day": 5000 },
          "pricing": { "openai/gpt-4o-mini": { "input_per_million": 0.15, "outputPerMillion": 0.6 } }
        }"#,
        &[("FACIO_LIMITS__TENANTS__GLOBEX", "30")],
    )
    .expect("loads");
    assert_eq!(config.limits.tenants["acme_corp"], 120);
    assert_eq!(config.limits.tenants["globex"], 30);
    assert_eq!(config.limits.tokens_per_day, 5000);
    let price = config.pricing["openai/gpt-4o-mini"];
    assert_eq!(
        (price.input_per_million, price.output_per_million),
        (0.15, 0.6)
    );
    let e = load(r#"{ "pricing": { "m": { "inputPerMilion": 1 } } }"#, &[]).unwrap_err();
    assert!(e.to_string().contains("pricing.m.inputPerMilion"), "{e}");
}

#[test]
fn telemetry_header_names_are_kept_as_written() {
    let config = load(
        r#"{ "telemetry": { "otlp_endpoint": "http://collector:4318",
            "headers": { "X-Scope-OrgID": "agents", "api_key": "k-1" } } }"#,
        &[],
    )
    .expect("loads");
    assert_eq!(
        config.telemetry.otlp_endpoint.as_deref(),
        Some("http://collector:4318")
    );
    assert_eq!(config.telemetry.headers["X-Scope-OrgID"], "agents");
    assert_eq!(config.telemetry.headers["api_key"], "k-1");
}
