use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::workspace_binary;
use crate::process::FacioProcess;

#[tokio::test]
async fn the_scripted_model_binary_serves_its_fixed_answer() {
    let bin = workspace_binary("facio-tests", "scripted-model").unwrap();
    assert!(bin.is_file(), "{} was built", bin.display());
    let process = FacioProcess::spawn(
        &bin,
        &["--content", "fixed answer", "--latency-ms", "1"],
        &[],
        Path::new("/"),
    )
    .unwrap();
    let line = process
        .wait_for_line(
            r"^listening on http://127\.0\.0\.1:\d+$",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let url = line.trim_start_matches("listening on ");
    let body: Value = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "fixed answer");
    process.kill().await.unwrap();
}

#[test]
fn an_unknown_binary_fails_with_cargo_s_message() {
    let error = workspace_binary("facio-tests", "no-such-binary")
        .unwrap_err()
        .to_string();
    // cargo's own stderr, not just our summary line.
    assert!(error.contains("no bin target named"), "{error}");
}
