use super::{load, load_err};

/// Loads `{ area: { ... } }` and returns the error, which must end with `expected`.
fn rejects(text: &str, expected: &str) {
    let message = load_err(text, &[]);
    assert!(
        message.ends_with(expected),
        "{message}\n  should end with: {expected}"
    );
}

#[test]
fn agent_budgets_have_floors() {
    rejects(
        r#"{ "agents": { "defaults": { "maxToolIterations": 0 } } }"#,
        "agents.defaults.maxToolIterations: must be at least 1",
    );
    rejects(
        r#"{ "agents": { "defaults": { "maxTokens": 0 } } }"#,
        "agents.defaults.maxTokens: must be at least 1",
    );
    rejects(
        r#"{ "agents": { "defaults": { "contextWindowTokens": 1000 } } }"#,
        "agents.defaults.contextWindowTokens: must be at least 1024",
    );
    rejects(
        r#"{ "agents": { "defaults": { "contextWindowTokens": 4096, "maxTokens": 4096 } } }"#,
        "agents.defaults.maxTokens: must be less than agents.defaults.contextWindowTokens (the reply must fit the window)",
    );
    rejects(
        r#"{ "agents": { "defaults": { "model": " " } } }"#,
        "agents.defaults.model: must not be empty",
    );
    assert!(
        load(
            r#"{ "agents": { "defaults": { "contextWindowTokens": 1024, "maxTokens": 1 } } }"#,
            &[]
        )
        .is_ok()
    );
}

#[test]
fn temperature_is_between_0_and_2() {
    for bad in ["-0.1", "2.01"] {
        rejects(
            &format!(r#"{{ "agents": {{ "defaults": {{ "temperature": {bad} }} }} }}"#),
            "agents.defaults.temperature: must be between 0 and 2",
        );
    }
    for good in ["0", "2"] {
        let text = format!(r#"{{ "agents": {{ "defaults": {{ "temperature": {good} }} }} }}"#);
        assert!(load(&text, &[]).is_ok(), "{good}");
    }
}

#[test]
fn timeouts_are_at_least_one_second() {
    for (text, key) in [
        (
            r#"{ "agents": { "defaults": { "requestTimeoutS": 0 } } }"#,
            "agents.defaults.requestTimeoutS",
        ),
        (
            r#"{ "agents": { "defaults": { "idlePassivateS": 0 } } }"#,
            "agents.defaults.idlePassivateS",
        ),
        (r#"{ "tools": { "timeoutS": 0 } }"#, "tools.timeoutS"),
        (
            r#"{ "tools": { "exec": { "timeoutS": 0 } } }"#,
            "tools.exec.timeoutS",
        ),
        (
            r#"{ "tools": { "web": { "timeoutS": 0 } } }"#,
            "tools.web.timeoutS",
        ),
    ] {
        rejects(text, &format!("{key}: must be at least 1"));
    }
}

#[test]
fn deny_patterns_must_be_regexes_and_the_index_is_named() {
    rejects(
        r#"{ "tools": { "exec": { "denyPatterns": ["rm -rf", "(unclosed"] } } }"#,
        "tools.exec.denyPatterns[1]: not a valid regex: unclosed group",
    );
}

#[test]
fn api_host_is_an_ip_or_host_name() {
    for bad in ["", "not a host", "-bad.example", "http://x"] {
        rejects(
            &format!(r#"{{ "api": {{ "host": "{bad}" }} }}"#),
            "api.host: must be an IP address or a host name",
        );
    }
    for good in [
        "0.0.0.0",
        "::1",
        "[::1]",
        "localhost",
        "facio-1.internal.example.com",
    ] {
        let text = format!(r#"{{ "api": {{ "host": "{good}" }} }}"#);
        assert!(load(&text, &[]).is_ok(), "{good}");
    }
}

#[test]
fn storage_url_is_sqlite_or_postgres() {
    rejects(
        r#"{ "storage": { "url": "mysql://db/facio" } }"#,
        "storage.url: must start with sqlite:, postgres:// or postgresql://",
    );
    for good in [
        "sqlite::memory:",
        "sqlite:///var/facio.db",
        "postgres://u@h/db",
        "postgresql://h/db",
    ] {
        let text = format!(r#"{{ "storage": {{ "url": "{good}" }} }}"#);
        assert!(load(&text, &[]).is_ok(), "{good}");
    }
}

#[test]
fn provider_settings_are_checked() {
    rejects(
        r#"{ "providers": { "local": { "apiBase": "localhost:11434" } } }"#,
        "providers.local.apiBase: must be an http:// or https:// URL",
    );
    rejects(
        r#"{ "providers": { "local": { "apiBase": "ftp://models.example/v1" } } }"#,
        "providers.local.apiBase: must be an http:// or https:// URL",
    );
    rejects(
        r#"{ "providers": { "local": { "kind": "gemini" } } }"#,
        r#"providers.local.kind: must be "openai" or "anthropic""#,
    );
    rejects(
        r#"{ "providers": { "local": { "extraHeaders": { "Bad Header": "x" } } } }"#,
        "providers.local.extraHeaders.Bad Header: not a valid HTTP header name",
    );
    assert!(load(r#"{ "providers": { "c": { "kind": "Anthropic", "apiBase": "https://a.example/v1" } } }"#, &[]).is_ok());
}

#[test]
fn logging_level_is_a_filter() {
    rejects(
        r#"{ "logging": { "level": "very loud" } }"#,
        r#"logging.level: "very loud" is not a module path"#,
    );
    rejects(
        r#"{ "logging": { "level": "info,facio=chatty" } }"#,
        r#"logging.level: "chatty" is not a level (use one of trace, debug, info, warn, error, off)"#,
    );
    rejects(
        r#"{ "logging": { "level": "" } }"#,
        r#"logging.level: must not be empty (e.g. "info" or "info,facio=debug")"#,
    );
    for good in [
        "debug",
        "WARN",
        "info,facio=debug,sqlx::query=off",
        "facio_services",
    ] {
        let text = format!(r#"{{ "logging": {{ "level": "{good}" }} }}"#);
        assert!(load(&text, &[]).is_ok(), "{good}");
    }
}

#[test]
fn private_host_entries_are_hosts() {
    rejects(
        r#"{ "tools": { "web": { "allowPrivateHosts": ["ok.local", "no way"] } } }"#,
        "tools.web.allowPrivateHosts[1]: must be an IP address or a host name",
    );
}

#[test]
fn mcp_servers_name_their_problem_and_keep_their_env_names() {
    rejects(
        r#"{ "tools": { "mcpServers": { "my_docs": { "type": "streamableHttp", "url": "https://x" } } } }"#,
        "tools.mcpServers.my_docs: \"my_docs\" may hold only letters, digits and '-' (the model sees its tools as mcp_<server>_<tool>)",
    );
    rejects(
        r#"{ "tools": { "mcpServers": { "docs": { "type": "stdio" } } } }"#,
        "tools.mcpServers.docs.command: a stdio server needs a command",
    );
    rejects(
        r#"{ "tools": { "mcpServers": { "docs": { "type": "streamableHttp", "url": "ftp://x" } } } }"#,
        "tools.mcpServers.docs.url: must be an http or https URL",
    );
    rejects(
        r#"{ "tools": { "mcpServers": { "docs": { "type": "stdio", "command": "x", "colour": 1 } } } }"#,
        "tools.mcpServers.docs.colour: unknown field, expected one of: args, command, enabled, \
         enabledTools, env, headers, riskTier, toolTimeoutS, type, url",
    );
    let config = load(
        r#"{ "tools": { "mcpServers": { "py": { "type": "stdio", "command": "python3",
             "env": { "SERVICE_TOKEN": "${credentials.SERVICE_TOKEN}" }, "riskTier": "read-only" } } } }"#,
        &[],
    )
    .expect("a stdio server loads");
    let py = &config.tools.mcp_servers["py"];
    assert_eq!(py.env["SERVICE_TOKEN"], "${credentials.SERVICE_TOKEN}");
    assert_eq!(py.risk_tier, crate::tools::RiskTier::ReadOnly);
    assert!(py.enabled);
}

#[test]
fn the_defaults_are_valid() {
    let config = load("{}", &[]).expect("defaults load");
    assert_eq!(config.agents, crate::config::AgentsConfig::default());
    assert_eq!(config.tools, crate::config::ToolsConfig::default());
}
