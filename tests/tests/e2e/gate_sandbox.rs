//! exec runs in an OS sandbox: writes confined, no network unless granted, no process outlives its call or its node.

use std::time::{Duration, Instant};

use facio_tests::model::Reply;
use serde_json::json;

use crate::support::{Env, PATIENCE, management, tool_results};

const TOKEN: &str = "sandbox-test-token";

#[tokio::test]
async fn no_process_of_a_command_outlives_a_node_killed_with_sigkill() {
    // A marker only this test's processes carry on their command line.
    let marker = format!("late-{}", std::process::id());
    let command = format!(
        "setsid sh -c 'sleep 2; echo {marker} >> late.txt' & echo started >> started.txt; sleep 30"
    );
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": command})),
        Reply::text("The job ran."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/policy",
        json!({"rules": [{"action": "allow", "tool": "exec"}]}),
    );
    let gateway = env.serve().await;
    let (status, accepted) = management(
        &gateway,
        TOKEN,
        reqwest::Method::POST,
        "/sessions/sandbox:kill/messages",
        Some(json!({"content": "Start the job."})),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let started = env.workspace().join("started.txt");
    let deadline = Instant::now() + PATIENCE;
    // The command's own side effect is the only sign it started; nothing to await on.
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "the command never started:\n{}",
            gateway.process.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.process.kill().await.unwrap();

    // Asserting that something does not happen: the background write was due 2 s
    // after the start; watch for 4 s.
    let late = env.workspace().join("late.txt");
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        assert!(!late.exists(), "a process of the command outlived the node");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = std::process::Command::new("pgrep")
        .args(["-a", "-f", &marker])
        .output()
        .expect("run pgrep");
    assert!(
        !left.status.success(),
        "processes of the command are still running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[tokio::test]
async fn a_command_reaches_the_network_only_when_its_allow_rule_grants_it() {
    // A local HTTP server answering 204 to anything.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let curl = |label: &str| {
        format!(
            "curl -w '{label}-%{{http_code}}' --max-time 5 -sS -o /dev/null http://127.0.0.1:{port}/"
        )
    };
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": curl("granted")})),
        Reply::tool_call("exec", json!({"command": curl("cut")})),
        Reply::text("Both tried."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/policy",
        json!({"rules": [
            {"action": "allow", "tool": "exec", "params": {"command": "curl -w granted-* *"}, "network": true},
            {"action": "allow", "tool": "exec", "params": {"command": "curl -w cut-* *"}}
        ]}),
    );
    let gateway = env.serve().await;
    let (status, run) = management(
        &gateway,
        TOKEN,
        reqwest::Method::POST,
        "/sessions/sandbox:net/messages?wait=20",
        Some(json!({"content": "Try the server twice."})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["content"], "Both tried.", "{run}");
    let results = tool_results(&env.model.requests()[2]);
    let text = |i: usize| results.get(i).map(|r| r.1.clone()).unwrap_or_default();
    assert!(
        text(0).contains("granted-204"),
        "the granted call reached the server: {}",
        text(0)
    );
    assert!(
        text(1).contains("cut-000") && !text(1).contains("cut-204"),
        "the call without a grant had no network: {}",
        text(1)
    );
}
