use super::{load, load_err};
use crate::config::ConfigError;

#[test]
fn variables_defaults_and_escapes_are_expanded() {
    let config = load(
        r#"{
          "providers": { "openai": {
            "apiKey": "${TEST_KEY}",
            "apiBase": "${TEST_BASE:-http://localhost:8000/v1}",
            "extraHeaders": { "X-Note": "cost $5, literal $${HOME}, ${WHO}!" }
          } },
          "agents": { "defaults": { "model": "${EMPTY_MODEL:-gpt-4o}" } }
        }"#,
        &[("TEST_KEY", "sk-123"), ("WHO", "me"), ("EMPTY_MODEL", "")],
    )
    .expect("loads");
    let openai = &config.providers["openai"];
    assert_eq!(openai.api_key.as_deref(), Some("sk-123"));
    assert_eq!(openai.api_base.as_deref(), Some("http://localhost:8000/v1"));
    assert_eq!(
        openai.extra_headers["X-Note"],
        "cost $5, literal ${HOME}, me!"
    );
    // An empty variable takes the default, as in a shell.
    assert_eq!(config.agents.defaults.model, "gpt-4o");
}

#[test]
fn an_empty_default_leaves_an_optional_field_unset() {
    let config = load(
        r#"{ "providers": { "openai": { "apiKey": "${NO_SUCH_KEY:-}" } } }"#,
        &[],
    )
    .expect("loads");
    assert_eq!(config.providers["openai"].api_key, None);
}

#[test]
fn a_missing_variable_names_the_key_and_the_variable() {
    let f = super::fixture(r#"{ "providers": { "openai": { "apiKey": "${OPENAI_KEY_X}" } } }"#);
    let err = crate::config::Config::load_with_env(Some(&f.path), &super::env(&[]))
        .expect_err("missing variable");
    assert!(
        matches!(&err, ConfigError::MissingVariable { key, var, .. }
            if key == "providers.openai.apiKey" && var == "OPENAI_KEY_X"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&f.path.display().to_string()), "{message}");
    assert!(
        message.contains("providers.openai.apiKey: environment variable OPENAI_KEY_X is not set"),
        "{message}"
    );
}

#[test]
fn malformed_references_are_errors() {
    let message = load_err(
        r#"{ "agents": { "defaults": { "model": "${OPEN" } } }"#,
        &[],
    );
    assert!(
        message.contains("agents.defaults.model: unterminated ${"),
        "{message}"
    );
    let message = load_err(r#"{ "api": { "host": "${1BAD}" } }"#, &[]);
    assert!(
        message.contains("api.host: ${1BAD} is not a variable name"),
        "{message}"
    );
}

#[test]
fn substituted_values_never_appear_in_errors() {
    let message = load_err(
        r#"{ "api": { "port": "${SECRET_PORT}" } }"#,
        &[("SECRET_PORT", "hunter2-secret")],
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("api.port: invalid type"), "{message}");
}

#[test]
fn interpolation_reaches_into_arrays() {
    let config = load(
        r#"{ "tools": { "web": { "allowPrivateHosts": ["${INTRANET}"] } } }"#,
        &[("INTRANET", "wiki.corp")],
    )
    .expect("loads");
    assert_eq!(config.tools.web.allow_private_hosts, ["wiki.corp"]);
}

#[test]
fn credential_references_are_kept_for_the_vault() {
    let config = super::load(
        r#"{ "providers": { "p": { "apiKey": "${credentials.P_KEY}",
             "extraHeaders": { "X-Org": "${ORG}-${credentials.ORG_ID}" } } } }"#,
        &[("ORG", "acme")],
    )
    .expect("loads");
    assert_eq!(
        config.providers["p"].api_key.as_deref(),
        Some("${credentials.P_KEY}")
    );
    assert_eq!(
        config.providers["p"].extra_headers["X-Org"],
        "acme-${credentials.ORG_ID}"
    );
}
