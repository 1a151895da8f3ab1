//! The official `openai` Python client, in strict validation mode, against the gateway.

use facio_tests::model::Reply;
use serde_json::Value;

use crate::support::{Env, stderr};

#[tokio::test]
async fn the_openai_python_client_accepts_every_response_and_chunk() {
    let env = Env::new(vec![
        Reply::text("Strictly valid."),
        Reply::text("Streamed and valid."),
    ])
    .await;
    let gateway = env.serve().await;
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/openai_strict.py");

    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("{}/v1", gateway.url))
        .arg("py:strict")
        .output()
        .await
        .unwrap();

    assert!(
        output.status.success(),
        "the openai client rejected a response (install it with `pip install -r tests/python/requirements.txt`):\n{}",
        stderr(&output)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["content"], "Strictly valid.");
    assert_eq!(report["finish"], "stop");
    assert_eq!(report["streamed"], "Streamed and valid.");
    assert_eq!(report["stream_finish"], "stop");
    assert!(report["stream_usage"].as_u64().unwrap() > 0);
    assert_eq!(report["bad_request"]["status"], 400);
    assert!(
        report["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "scripted-1"),
        "{report}"
    );
}
