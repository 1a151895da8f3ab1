use serde_json::json;

use super::{env, fixture};
use crate::config::{Config, ConfigError, SettingsError};

#[test]
fn a_value_settings_json_sets_is_no_longer_from_the_environment() {
    let f = fixture(r#"{ "agents": { "defaults": { "model": "${MODEL}" } } }"#);
    std::fs::write(
        f.dir.path().join("settings.json"),
        r#"{ "agents": { "defaults": { "model": "gpt-literal" } } }"#,
    )
    .unwrap();
    let config = Config::load_with_env(Some(&f.path), &env(&[("MODEL", "gpt-x")])).expect("loads");
    assert_eq!(config.agents.defaults.model, "gpt-literal");
    assert!(
        config.from_environment.is_empty(),
        "{:?}",
        config.from_environment
    );
}

#[test]
fn settings_json_lies_over_config_json_and_the_environment_wins() {
    let f =
        fixture(r#"{ "agents": { "defaults": { "maxToolIterations": 7, "maxTokens": 100 } } }"#);
    std::fs::write(
        f.dir.path().join("settings.json"),
        r#"{ "agents": { "defaults": { "max_tool_iterations": 3 } } }"#,
    )
    .unwrap();
    let config = Config::load_with_env(Some(&f.path), &env(&[])).expect("loads");
    assert_eq!(config.agents.defaults.max_tool_iterations, 3);
    assert_eq!(
        config.agents.defaults.max_tokens, 100,
        "the rest of the file stays"
    );
    let config = Config::load_with_env(
        Some(&f.path),
        &env(&[("FACIO_AGENTS__DEFAULTS__MAX_TOOL_ITERATIONS", "9")]),
    )
    .expect("loads");
    assert_eq!(config.agents.defaults.max_tool_iterations, 9);
}

#[test]
fn settings_json_follows_the_api_rules_also_when_edited_by_hand() {
    let f = fixture(r#"{ "agents": { "defaults": { "model": "${MODEL}" } } }"#);
    let settings = f.dir.path().join("settings.json");
    let vars = env(&[("MODEL", "gpt-x"), ("SECRET_VAR", "do-not-expand")]);
    let config = Config::load_with_env(Some(&f.path), &vars).expect("loads");
    assert_eq!(config.agents.defaults.model, "gpt-x", "config.json expands");
    assert!(
        config
            .from_environment
            .contains(&"agents.defaults.model".to_owned())
    );
    for (text, key) in [
        (
            r#"{ "agents": { "defaults": { "provider": "${SECRET_VAR}" } } }"#,
            "agents.defaults.provider",
        ),
        (
            r#"{ "tools": { "restrictToWorkspace": false } }"#,
            "tools.restrictToWorkspace",
        ),
    ] {
        std::fs::write(&settings, text).unwrap();
        let err = Config::load_with_env(Some(&f.path), &vars).expect_err("refused");
        assert!(
            matches!(&err, ConfigError::Invalid { file: Some(file), key: k, .. }
                if file == &settings && k == key),
            "{err}"
        );
    }
}

#[test]
fn a_bad_value_in_settings_json_is_blamed_on_it() {
    let f = fixture("{}");
    let settings = f.dir.path().join("settings.json");
    std::fs::write(
        &settings,
        r#"{ "agents": { "defaults": { "maxTokens": "lots" } } }"#,
    )
    .unwrap();
    let err = Config::load_with_env(Some(&f.path), &env(&[])).expect_err("invalid");
    assert!(
        matches!(&err, ConfigError::Invalid { file: Some(file), key, .. }
            if file == &settings && key == "agents.defaults.maxTokens"),
        "{err}"
    );
    std::fs::write(&settings, r#"{ "agents": { "bogus": 1 } }"#).unwrap();
    let err = Config::load_with_env(Some(&f.path), &env(&[])).expect_err("unknown");
    assert!(err.to_string().contains("settings.json"), "{err}");
    assert!(err.to_string().contains("agents.bogus"), "{err}");
}

#[test]
fn changes_are_checked_then_saved_beside_the_config_file() {
    let text =
        "// the operator's comment\n{ \"agents\": { \"defaults\": { \"maxTokens\": 100 } } }";
    let f = fixture(text);
    let config = Config::load(Some(&f.path)).expect("loads");
    let settings = f.dir.path().join("settings.json");

    let refused = config
        .change_settings(json!({"storage": {"dataDir": "/"}}))
        .expect_err("storage is not changeable");
    assert!(matches!(&refused, SettingsError::NotChangeable { key } if key == "storage.dataDir"));
    let refused = config
        .change_settings(json!({"agents": {"defaults": {"maxTokens": 0}}}))
        .expect_err("out of range");
    assert_eq!(
        refused.key(),
        Some("agents.defaults.maxTokens"),
        "{refused}"
    );
    assert!(matches!(
        config.change_settings(json!([1])),
        Err(SettingsError::NotAnObject)
    ));
    let refused = config
        .change_settings(json!({"logging": {"level": "${HOME}"}}))
        .expect_err("a reference");
    assert!(matches!(&refused, SettingsError::Reference { key } if key == "logging.level"));
    let refused = config
        .change_settings(json!({"tools": {"exec": {"denyPatterns": []}}}))
        .expect_err("confinement is file-only");
    assert_eq!(refused.key(), Some("tools.exec.denyPatterns"));
    assert!(
        !settings.exists(),
        "nothing is written for a refused change"
    );

    let changed = config
        .change_settings(json!({"agents": {"defaults": {"max_tokens": 200, "temperature": 0.5}}}))
        .expect("a valid change");
    assert_eq!(
        changed.keys,
        ["agents.defaults.maxTokens", "agents.defaults.temperature"]
    );
    assert_eq!(std::fs::read_to_string(&f.path).unwrap(), text);
    let reloaded = Config::load(Some(&f.path)).expect("loads");
    assert_eq!(reloaded.agents.defaults.max_tokens, 200);
    assert!((reloaded.agents.defaults.temperature - 0.5).abs() < f32::EPSILON);

    let removed = config
        .change_settings(json!({"agents": {"defaults": {"maxTokens": null}}}))
        .expect("removing a saved value");
    let reloaded = Config::load(Some(&f.path)).expect("loads");
    assert_eq!(
        reloaded.agents.defaults.max_tokens, 100,
        "config.json applies again"
    );
    assert!((reloaded.agents.defaults.temperature - 0.5).abs() < f32::EPSILON);
    removed.undo().expect("taken back");
    let reloaded = Config::load(Some(&f.path)).expect("loads");
    assert_eq!(
        reloaded.agents.defaults.max_tokens, 200,
        "the undone change is gone"
    );
}

#[test]
fn undo_takes_back_only_its_own_keys() {
    let f = fixture("{}");
    let config = Config::load(Some(&f.path)).expect("loads");
    let first = config
        .change_settings(json!({"agents": {"defaults": {"maxTokens": 300}}}))
        .expect("first");
    config
        .change_settings(json!({"agents": {"defaults": {"temperature": 0.3}}}))
        .expect("second, made meanwhile");
    first.undo().expect("undone");
    let reloaded = Config::load(Some(&f.path)).expect("loads");
    assert_eq!(
        reloaded.agents.defaults.max_tokens, 4096,
        "the first is gone"
    );
    assert!(
        (reloaded.agents.defaults.temperature - 0.3).abs() < f32::EPSILON,
        "the second stays"
    );
}
