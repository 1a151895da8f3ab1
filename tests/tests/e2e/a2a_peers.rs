//! The A2A client against a peer built with the official Python SDK (PyPI `a2a-sdk`,
//! `tests/python/a2a_peer.py`, the SDK's hello-world agent shape): registering a peer
//! reads its card, `call_agent` gets its answers, a peer's question goes to a human
//! before anything answers it, and the peer's refusals, failures and silence come back
//! as structured tool errors. Peers are the tenant's: another tenant never sees them.

use facio_tests::model::Reply;
use facio_tests::process::free_port;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::hitl::{TOKEN, finished};
use crate::support::{Env, Gateway, PATIENCE, token, tool_result_with};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/a2a_peer.py");
const PEER_TOKEN: &str = "peer-token-5b1e-never-shown";

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::support::management(gateway, TOKEN, method, path, body).await
}

/// The Python peer on a free port, killed on drop; its card URL.
async fn python_peer() -> (tokio::process::Child, String) {
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = free_port().unwrap();
    let mut child = tokio::process::Command::new(python)
        .arg(PEER)
        .arg(port.to_string())
        .arg(PEER_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python A2A peer (tests/run.sh installs a2a-sdk)");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("listening on") {
                return;
            }
        }
        panic!("the peer ended before it listened");
    })
    .await
    .expect("the peer listened");
    (
        child,
        format!("http://127.0.0.1:{port}/.well-known/agent-card.json"),
    )
}

#[tokio::test]
async fn call_agent_talks_to_an_a2a_sdk_peer_and_a_human_answers_its_question() {
    let (_peer, card_url) = python_peer().await;
    let mut env = Env::new(vec![
        Reply::tool_call("call_agent", json!({"peer": "py", "message": "hi there"})),
        Reply::tool_call(
            "call_agent",
            json!({"peer": "py", "message": "ask me a colour"}),
        ),
        // The model answers the peer's question on the task it was given...
        Reply::tool_call_from_result(
            "call_agent",
            json!({"peer": "py", "message": "blue", "taskId": "{{taskId}}",
                   "contextId": "{{contextId}}"}),
        ),
        Reply::text("The peer has its colour."),
        Reply::tool_call(
            "call_agent",
            json!({"peer": "py", "message": "fail please"}),
        ),
        Reply::tool_call("call_agent", json!({"peer": "nobody", "message": "hi"})),
        Reply::tool_call(
            "call_agent",
            json!({"peer": "py", "message": "slow down", "timeoutS": 1}),
        ),
        Reply::text("Handled."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/auth",
        json!({"hs256Secret": "peer-test-hs256-secret-of-32-characters!"}),
    );
    // The operator lets call_agent run: answering a peer's question still waits.
    env.set(
        "/policy",
        json!({"rules": [{"action": "allow", "tool": "call_agent"}]}),
    );
    let gateway = env.serve().await;

    // A raw token and an unreadable card are refused, and nothing is stored.
    let (status, bad) = api(
        &gateway,
        Method::POST,
        "/a2a/peers",
        Some(json!({"alias": "py", "cardUrl": card_url, "token": PEER_TOKEN})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(!bad.to_string().contains(PEER_TOKEN), "{bad}");
    let closed = format!("http://127.0.0.1:{}/card.json", free_port().unwrap());
    let (status, bad) = api(
        &gateway,
        Method::POST,
        "/a2a/peers",
        Some(json!({"alias": "gone", "cardUrl": closed})),
    )
    .await;
    assert_eq!(
        (status, &bad["error"]["param"]),
        (422, &json!("cardUrl")),
        "{bad}"
    );
    let (_, listed) = api(&gateway, Method::GET, "/a2a/peers", None).await;
    assert_eq!(listed["peers"], json!([]), "{listed}");

    let (status, _) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "PEER_TOKEN", "value": PEER_TOKEN})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, peer) = api(
        &gateway,
        Method::POST,
        "/a2a/peers",
        Some(json!({"alias": "py", "cardUrl": card_url, "token": "${credentials.PEER_TOKEN}"})),
    )
    .await;
    assert_eq!(status, 201, "{peer}");
    assert_eq!(
        (&peer["name"], &peer["protocolVersion"]),
        (&json!("Python peer"), &json!("1.0")),
        "{peer}"
    );
    let (status, card) = api(&gateway, Method::GET, "/a2a/peers/py/card", None).await;
    assert_eq!(
        (status, &card["name"]),
        (200, &json!("Python peer")),
        "{card}"
    );
    // Without our token the peer refuses, and says so.
    let (status, _) = api(
        &gateway,
        Method::POST,
        "/a2a/peers",
        Some(json!({"alias": "py-anon", "cardUrl": card_url})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, refused) = api(
        &gateway,
        Method::POST,
        "/a2a/peers/py-anon/call",
        Some(json!({"message": "hi"})),
    )
    .await;
    assert_eq!(status, 502, "{refused}");
    assert!(
        refused.to_string().contains("refused our credentials"),
        "{refused}"
    );
    let (status, tried) = api(
        &gateway,
        Method::POST,
        "/a2a/peers/py/call",
        Some(json!({"message": "from the operator"})),
    )
    .await;
    assert_eq!(
        (status, &tried["state"], &tried["answer"]),
        (
            200,
            &json!("completed"),
            &json!("Hello World: from the operator")
        ),
        "{tried}"
    );
    // Another tenant has no such peer.
    let (status, created) = api(
        &gateway,
        Method::POST,
        "/tenants",
        Some(json!({"name": "acme"})),
    )
    .await;
    assert!(status == 201 || status == 200, "{created}");
    let acme = token(&env, "acme", "operator").await;
    let (status, _) =
        crate::support::management(&gateway, &acme, Method::GET, "/a2a/peers/py", None).await;
    assert_eq!(status, 404);

    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/a2a:peer/messages?wait=30",
        Some(json!({"content": "Talk to the Python peer."})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert!(tool_result_with(&env, "Hello World: hi there").contains("completed"));
    let asked = tool_result_with(&env, "Which colour do you want?");
    assert!(asked.contains("input-required"), "{asked}");
    // ...but an answer to another agent's question is a human's to confirm, allow
    // rule or not: the run waits, and the card shows the question.
    assert_eq!(run["status"], "awaiting_review", "{run}");
    let review = run["reviews"][0].as_str().unwrap().to_owned();
    let (_, shown) = api(&gateway, Method::GET, &format!("/reviews/{review}"), None).await;
    assert_eq!(shown["tool"], "call_agent", "{shown}");
    assert!(
        shown.to_string().contains("Which colour do you want?"),
        "the reviewer sees the peer's question: {shown}"
    );
    let proposed = shown["context"]["arguments"].clone();
    let mut edited = proposed.clone();
    edited["message"] = json!("green");
    let (status, decided) = api(
        &gateway,
        Method::POST,
        &format!("/reviews/{review}/decide"),
        Some(
            json!({"response": {"selectedOption": "approve"}, "reviewer": "alice",
                    "editedArguments": edited}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        tool_result_with(&env, "You chose").contains("You chose green."),
        "the human's answer went to the peer"
    );

    // What goes wrong comes back as structured errors; the turn goes on.
    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/a2a:peer/messages?wait=30",
        Some(json!({"content": "Now try the hard things."})),
    )
    .await;
    assert_eq!(
        (status, &run["status"]),
        (200, &json!("completed")),
        "{run}"
    );
    let failed = tool_result_with(&env, "could not do it");
    assert!(failed.contains("\"type\":\"failed\""), "{failed}");
    let unknown = tool_result_with(&env, "nobody");
    assert!(
        unknown.contains("not_found") && unknown.contains("py"),
        "{unknown}"
    );
    let slow = tool_result_with(&env, "within 1s");
    assert!(slow.contains("\"type\":\"timeout\""), "{slow}");

    // No request to the model ever held the peer's token.
    for request in env.model.requests() {
        assert!(!request.body.to_string().contains(PEER_TOKEN));
    }
    let (_, audit) = api(&gateway, Method::GET, "/audit?limit=500", None).await;
    assert!(!audit.to_string().contains(PEER_TOKEN));
    let (_, changes) = api(&gateway, Method::GET, "/audit?type=a2a_peer_changed", None).await;
    assert_eq!(
        changes["events"].as_array().map(Vec::len),
        Some(2),
        "{changes}"
    );
}
