//! Workspace confinement as the model experiences it: escapes are refused as tool
//! errors, and nothing from outside reaches the model.

use std::time::Duration;

use facio::RunOptions;
use facio_tests::model::Reply;
use serde_json::json;

use crate::support::{Env, request_text};

#[tokio::test]
async fn escape_attempts_are_refused_and_leak_nothing() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "TOP-SECRET-7731").unwrap();
    let env = Env::new(vec![
        Reply::tool_call("read_file", json!({"path": "../../secret.txt"})),
        Reply::tool_call(
            "read_file",
            json!({"path": outside.path().join("secret.txt")}),
        ),
        Reply::tool_call("read_file", json!({"path": "link/secret.txt"})),
        Reply::tool_call(
            "write_file",
            json!({"path": "link/planted.txt", "content": "x"}),
        ),
        Reply::tool_call(
            "edit_file",
            json!({"path": "/etc/hostname", "old_text": "a", "new_text": "b"}),
        ),
        Reply::text("I cannot reach those files."),
    ])
    .await;
    std::os::unix::fs::symlink(outside.path(), env.workspace().join("link")).unwrap();
    let facio = env.sdk().await;

    let result = facio
        .run(
            "Read the secret.",
            RunOptions::session("sdk:escape").unwrap(),
        )
        .await
        .unwrap();

    assert_eq!(result.content, "I cannot reach those files.");
    assert_eq!(result.tools_used.len(), 5);
    for used in &result.tools_used {
        assert!(!used.ok, "{} escaped: {}", used.name, used.output);
        assert!(used.output.contains("outside"), "{}", used.output);
    }
    assert!(
        !outside.path().join("planted.txt").exists(),
        "a write escaped through the symlink"
    );
    for request in env.model.requests() {
        assert!(
            !request_text(&request).contains("TOP-SECRET-7731"),
            "the secret reached the model"
        );
    }
    facio.shutdown(Duration::from_secs(5)).await;
}
