use super::{load, load_err};
use crate::config::ConfigError;

#[test]
fn overrides_win_over_the_file_and_nest() {
    let config = load(
        r#"{ "api": { "port": 8000 }, "agents": { "defaults": { "maxToolIterations": 9 } } }"#,
        &[
            ("FACIO_API__PORT", "9000"),
            ("FACIO_AGENTS__DEFAULTS__MAX_TOOL_ITERATIONS", "5"),
            ("FACIO_TOOLS__EXEC__TIMEOUT_S", "7"),
        ],
    )
    .expect("loads");
    assert_eq!(config.api.port, 9000);
    assert_eq!(config.agents.defaults.max_tool_iterations, 5);
    assert_eq!(config.tools.exec.timeout_s, 7);
}

#[test]
fn provider_overrides_create_the_entry_under_a_lowercase_name() {
    let config = load(
        "{}",
        &[
            ("FACIO_PROVIDERS__OPENAI__API_KEY", "12345"),
            ("FACIO_PROVIDERS__MY_VLLM__API_BASE", "http://gpu:8000/v1"),
        ],
    )
    .expect("loads");
    // Digits stay text in a text field.
    assert_eq!(config.providers["openai"].api_key.as_deref(), Some("12345"));
    assert_eq!(
        config.providers["my_vllm"].api_base.as_deref(),
        Some("http://gpu:8000/v1")
    );
}

#[test]
fn override_values_are_json_when_they_parse() {
    let config = load(
        "{}",
        &[
            ("FACIO_TOOLS__RESTRICT_TO_WORKSPACE", "false"),
            ("FACIO_AGENTS__DEFAULTS__TEMPERATURE", "0.7"),
            (
                "FACIO_TOOLS__WEB__ALLOW_PRIVATE_HOSTS",
                r#"["127.0.0.1","nas.local"]"#,
            ),
            ("FACIO_API__HOST", "0.0.0.0"),
            ("FACIO_LOGGING__FORMAT", "json"),
        ],
    )
    .expect("loads");
    assert!(!config.tools.restrict_to_workspace);
    assert!((config.agents.defaults.temperature - 0.7).abs() < 1e-6);
    assert_eq!(
        config.tools.web.allow_private_hosts,
        ["127.0.0.1", "nas.local"]
    );
    assert_eq!(config.api.host, "0.0.0.0");
    assert_eq!(config.logging.format, crate::config::LogFormat::Json);
}

#[test]
fn variables_without_double_underscore_are_not_overrides() {
    let config = load(
        "{}",
        &[
            ("FACIO_DATA_DIR", "/tmp/x"),
            ("FACIO_MANAGEMENT_TOKEN", "t"),
            ("FACIO_CONFIG_EXTRA", "y"),
        ],
    )
    .expect("loads");
    assert_eq!(config.storage.data_dir, None);
}

#[test]
fn an_unknown_override_names_the_variable() {
    let f = super::fixture("{}");
    let err = crate::config::Config::load_with_env(
        Some(&f.path),
        &super::env(&[("FACIO_API__PORTT", "1")]),
    )
    .expect_err("unknown key");
    assert!(matches!(&err, ConfigError::Override { var, .. } if var == "FACIO_API__PORTT"));
    assert_eq!(
        err.to_string(),
        "config override FACIO_API__PORTT: api.portt: unknown field, did you mean port?"
    );
    let message = load_err("{}", &[("FACIO_API__PORT__X", "1")]);
    assert!(
        message.contains("FACIO_API__PORT__X: api.port.x:"),
        "{message}"
    );
    let message = load_err("{}", &[("FACIO_PROVIDERS__OPENAI__NOPE", "1")]);
    assert!(
        message.contains("providers.openai.nope: unknown field"),
        "{message}"
    );
}

#[test]
fn a_bad_override_value_names_the_variable() {
    let message = load_err("{}", &[("FACIO_API__PORT", "abc")]);
    assert_eq!(
        message,
        r#"config override FACIO_API__PORT: api.port: invalid type: string "abc", expected u16"#
    );
    let message = load_err("{}", &[("FACIO_AGENTS__DEFAULTS__MAX_TOKENS", "0")]);
    assert!(
        message.contains(
            "FACIO_AGENTS__DEFAULTS__MAX_TOKENS: agents.defaults.maxTokens: must be at least 1"
        ),
        "{message}"
    );
}

#[test]
fn an_object_override_is_checked_like_the_file() {
    let config = load(
        "{}",
        &[(
            "FACIO_PROVIDERS__LOCAL",
            r#"{"api_base": "http://127.0.0.1:1234/v1"}"#,
        )],
    )
    .expect("loads");
    assert_eq!(
        config.providers["local"].api_base.as_deref(),
        Some("http://127.0.0.1:1234/v1")
    );
    let message = load_err("{}", &[("FACIO_PROVIDERS__LOCAL", r#"{"apiBsae": "x"}"#)]);
    assert!(
        message.contains("providers.local.apiBsae: unknown field, did you mean apiBase?"),
        "{message}"
    );
}
