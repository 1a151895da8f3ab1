use super::{load, load_err};
use crate::config::ConfigError;

#[test]
fn comments_and_trailing_commas_are_accepted() {
    let config = load(
        r#"// top comment
        {
          /* block
             comment */
          "api": { "port": 9100, }, // trailing comma in object
          "tools": { "web": { "allowPrivateHosts": ["10.0.0.1", "intranet.local",], }, },
          "agents": { "defaults": { "model": "a // not a comment /* nor this */" } },
        }"#,
        &[],
    )
    .expect("loads");
    assert_eq!(config.api.port, 9100);
    assert_eq!(
        config.tools.web.allow_private_hosts,
        ["10.0.0.1", "intranet.local"]
    );
    assert_eq!(
        config.agents.defaults.model,
        "a // not a comment /* nor this */"
    );
}

#[test]
fn parse_error_names_file_line_and_column() {
    let text = "{\n  // a comment with ünïcode\n  \"api\": { \"port\": 1 \"host\": \"x\" }\n}";
    let f = super::fixture(text);
    let err = crate::config::Config::load_with_env(Some(&f.path), &super::env(&[]))
        .expect_err("bad json");
    match &err {
        ConfigError::Parse { line, column, .. } => assert_eq!((*line, *column), (3, 22)),
        other => panic!("expected a parse error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}:3:22:", f.path.display())),
        "{message}"
    );
    assert!(message.contains("expected"), "{message}");
}

#[test]
fn unterminated_block_comment_is_located() {
    let message = load_err("{\n  \"api\": {} /* never closed\n}", &[]);
    assert!(
        message.contains(":2:13: unterminated /* comment"),
        "{message}"
    );
}

#[test]
fn top_level_must_be_an_object() {
    let message = load_err("  [1, 2]", &[]);
    assert!(
        message.contains(":1:3: the top level must be an object"),
        "{message}"
    );
}

#[test]
fn a_file_of_only_comments_means_defaults() {
    let config = load("// nothing configured yet\n", &[]).expect("loads");
    assert_eq!(config.api, crate::config::ApiConfig::default());
    assert_eq!(config.agents, crate::config::AgentsConfig::default());
}
