//! The management API's OpenAPI document, held to what the node does: Schemathesis
//! (from PyPI) generates requests from the document against a live node, valid and
//! invalid, and checks every answer against it.

use std::time::Duration;

use serde_json::json;

use crate::support::Env;

const TOKEN: &str = "openapi-management-token";

/// The operations that may refuse a request the document calls valid, and why: the
/// reason is one JSON Schema cannot say. Every other operation is held strictly.
const SEMANTIC: &[(&str, &str)] = &[
    (
        "patch_settings",
        "node settings are config keys checked against the whole config",
    ),
    (
        "post_policy",
        "a rule's globs must compile; only an allow rule grants the network",
    ),
    (
        "post_credentials",
        "a scope's command globs must parse and need exec among its tools",
    ),
    ("put_credentials__key_", "as post_credentials"),
    (
        "put_credentials__key__exposed",
        "an exposed credential cannot be scoped to commands",
    ),
    (
        "get_workspace_tree",
        "a path may not lead outside the workspace (.., a link out)",
    ),
    ("get_workspace_file", "as get_workspace_tree"),
    ("put_workspace_file", "as get_workspace_tree"),
    ("delete_workspace_file", "as get_workspace_tree"),
    (
        "post_mcp",
        "a server's url must parse as an http(s) URL with a host; header values must be \
         valid in a header",
    ),
    ("put_mcp__name_", "as post_mcp"),
    (
        "patch_mcp__name_",
        "as post_mcp, for the definition the patch makes",
    ),
    (
        "post_cron",
        "a schedule's cron pattern must parse, everyS is 1 s to a year, at is in the \
         future, the message is not blank",
    ),
    (
        "patch_cron__id_",
        "as post_cron, for the job the patch makes",
    ),
    (
        "put_channels__name_",
        "a channel name is 1-64 letters, digits, '-' or '_'; outboundUrl must parse as a URL",
    ),
    (
        "post_a2a_peers",
        "the card at cardUrl must be readable and name a JSON-RPC endpoint (422 otherwise)",
    ),
    (
        "post_reviews__id__decide",
        "a decision must fit its review's type (options, fields)",
    ),
];

/// Runs Schemathesis with `config` and `filters` against the node at `url`, in
/// `dir`; returns whether it passed, and its report.
async fn schemathesis(
    url: &str,
    dir: &std::path::Path,
    config: &str,
    filters: &[String],
) -> (bool, String) {
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let config = format!("{}/schemathesis/{config}", env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new(python);
    command
        .args([
            "-m",
            "schemathesis.cli",
            "--no-color",
            "--config-file",
            &config,
            "run",
        ])
        .arg(format!("{url}/api/v1/openapi.json"))
        .args(["--url", &format!("{url}/api/v1")])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            "20",
            "--workers",
            "1",
            "--seed",
            "20261203",
        ])
        .args(["--request-timeout", "20"])
        .args(filters)
        .env("SCHEMATHESIS_HOOKS", "")
        // Its example database and reports stay in the test's directory.
        .current_dir(dir)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(900), command.output())
        .await
        .expect("Schemathesis finished within 15 minutes")
        .expect("run Schemathesis (tests/run.sh installs tests/python/requirements.txt)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

#[tokio::test]
async fn schemathesis_finds_no_request_the_document_misdescribes() {
    let mut env = Env::new(vec![]).await;
    env.set("/api/managementToken", json!(TOKEN));
    // Thousands of requests a minute: no rate limit for this run.
    env.set(
        "/limits",
        json!({"tenantRequestsPerMinute": 0, "tokenRequestsPerMinute": 0}),
    );
    // Turns the generated messages start fail at once (the model has no reply):
    // a request that waits for its run is answered quickly.
    env.set("/agents/defaults/maxRetries", json!(0));
    let gateway = env.serve().await;
    let mut strict = Vec::new();
    let mut semantic = Vec::new();
    for (id, _) in SEMANTIC {
        strict.extend(["--exclude-operation-id".to_owned(), (*id).to_owned()]);
        semantic.extend(["--include-operation-id".to_owned(), (*id).to_owned()]);
    }
    let (passed, report) = schemathesis(&gateway.url, env.dir.path(), "strict.toml", &strict).await;
    let log = gateway.process.output();
    let tail: String = log
        .lines()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        passed,
        "Schemathesis (strict):\n{report}\nnode log (last lines):\n{tail}"
    );
    assert!(report.contains("Tested:"), "{report}");
    let (passed, report) =
        schemathesis(&gateway.url, env.dir.path(), "semantic.toml", &semantic).await;
    assert!(passed, "Schemathesis (the semantic operations):\n{report}");
    assert!(
        !gateway.process.output().contains("panicked"),
        "{}",
        gateway.process.output()
    );
}
