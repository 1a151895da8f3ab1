//! The A2A endpoint against the official Python SDK (PyPI `a2a-sdk`, protocol 1.0):
//! card discovery, blocking and streaming sends, get, list with pages, cancel, and the
//! question round trip; and what it must refuse: no token, another tenant's task, a
//! caller approving its own side effect, unknown versions and methods.

use std::time::Duration;

use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, http, management, stderr, token};

const A2A_TOKEN: &str = "a2a-test-token-not-secret";
const TOKEN: &str = "a2a-management-token";
const SECRET: &str = "a2a-test-hs256-secret-of-32-characters!";

async fn a2a_env(replies: Vec<Reply>) -> Env {
    let mut env = Env::new(replies).await;
    env.set("/api/a2aToken", json!(A2A_TOKEN));
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/auth", json!({"hs256Secret": SECRET}));
    env.set(
        "/a2a",
        json!({"name": "Facio test agent", "skills": [{"id": "files", "name": "Files",
               "description": "Writes files", "tags": ["files"]}]}),
    );
    env
}

/// One step of `tests/python/a2a_client.py` with `token` ("-" for none).
async fn sdk(gateway: &Gateway, token: &str, args: &[&str]) -> Value {
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/a2a_client.py");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg(script)
            .arg(&gateway.url)
            .arg(token)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the A2A client finished")
    .expect("run python (tests/run.sh installs tests/python/requirements.txt)");
    assert!(
        output.status.success(),
        "a2a_client.py {args:?} failed:\n{}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "a2a_client.py printed JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A raw JSON-RPC call (for what the SDK never sends).
async fn rpc(gateway: &Gateway, version: Option<&str>, body: &str) -> Value {
    let mut request = http()
        .post(format!("{}/a2a", gateway.url))
        .bearer_auth(A2A_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(version) = version {
        request = request.header("A2A-Version", version);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "JSON-RPC errors travel in HTTP 200");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_a2a_sdk_discovers_sends_streams_lists_and_cancels() {
    let env = a2a_env(vec![
        Reply::text("Hello from Facio."),
        Reply::text("Streamed answer."),
        Reply::text("too late").delayed(Duration::from_secs(20)),
        Reply::text("Old clients work too."),
    ])
    .await;
    let gateway = env.serve().await;

    let card = sdk(&gateway, "-", &["card"]).await;
    assert_eq!(card["name"], "Facio test agent", "{card}");
    assert_eq!(
        card["interfaces"][0],
        json!([format!("{}/a2a", gateway.url), "JSONRPC", "1.0"]),
        "{card}"
    );
    assert_eq!(
        (card["streaming"].clone(), card["skills"].clone()),
        (json!(true), json!(["files"]))
    );
    assert_eq!(
        card["schemes"],
        json!(["bearer"]),
        "the card says a token is needed"
    );
    let (status, managed) =
        management(&gateway, TOKEN, reqwest::Method::GET, "/agent-card", None).await;
    assert_eq!(
        (status, &managed["name"]),
        (200, &json!("Facio test agent"))
    );

    // Refused without a token (and nothing ran: the model was not called).
    let refused = sdk(&gateway, "-", &["send", "hi"]).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("401"),
        "{refused}"
    );
    assert!(env.model.requests().is_empty());

    let sent = sdk(&gateway, A2A_TOKEN, &["send", "hi", "a2a:one"]).await;
    assert_eq!(sent["state"], "TASK_STATE_COMPLETED", "{sent}");
    assert_eq!(sent["contextId"], "a2a:one");
    assert_eq!(sent["artifacts"], json!(["Hello from Facio."]));
    assert_eq!(
        sent["history"],
        json!([["ROLE_USER", "hi"], ["ROLE_AGENT", "Hello from Facio."]]),
        "{sent}"
    );
    let first = sent["id"].as_str().unwrap().to_owned();
    let got = sdk(&gateway, A2A_TOKEN, &["get", &first]).await;
    assert_eq!(
        (got["state"].clone(), got["artifacts"].clone()),
        (json!("TASK_STATE_COMPLETED"), json!(["Hello from Facio."]))
    );

    let streamed = sdk(&gateway, A2A_TOKEN, &["stream", "again", "a2a:one"]).await;
    let events = streamed["events"].as_array().unwrap();
    assert_eq!(events[0]["kind"], "task", "{streamed}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "artifact" && e["text"] == "Streamed answer."),
        "{streamed}"
    );
    assert_eq!(
        events.last().unwrap()["state"],
        "TASK_STATE_COMPLETED",
        "{streamed}"
    );

    let listed = sdk(&gateway, A2A_TOKEN, &["list", "a2a:one"]).await;
    assert_eq!(
        (
            listed["total"].clone(),
            listed["ids"].as_array().unwrap().len()
        ),
        (json!(2), 2),
        "{listed}"
    );
    assert_eq!(listed["ids"][1], first.as_str(), "newest first: {listed}");
    let page = sdk(&gateway, A2A_TOKEN, &["list", "a2a:one", "-", "1"]).await;
    assert_eq!(page["ids"].as_array().unwrap().len(), 1, "{page}");
    let next = page["next"].as_str().unwrap().to_owned();
    assert!(!next.is_empty(), "{page}");
    let rest = sdk(&gateway, A2A_TOKEN, &["list", "a2a:one", "-", "1", &next]).await;
    assert_eq!(
        (rest["ids"].clone(), rest["next"].clone()),
        (json!([first]), json!("")),
        "{rest}"
    );
    let done = sdk(&gateway, A2A_TOKEN, &["list", "-", "TASK_STATE_COMPLETED"]).await;
    assert_eq!(done["total"], 2, "{done}");

    // A task that is still at the model is canceled; a canceled one cannot be again.
    let slow = sdk(
        &gateway,
        A2A_TOKEN,
        &["send-now", "take your time", "a2a:two"],
    )
    .await;
    assert!(
        matches!(
            slow["state"].as_str(),
            Some("TASK_STATE_SUBMITTED" | "TASK_STATE_WORKING")
        ),
        "{slow}"
    );
    let slow_id = slow["id"].as_str().unwrap().to_owned();
    env.model
        .wait_for_requests(3, crate::support::PATIENCE)
        .await
        .expect("the slow turn reached the model");
    let canceled = sdk(&gateway, A2A_TOKEN, &["cancel", &slow_id]).await;
    assert_eq!(canceled["state"], "TASK_STATE_CANCELED", "{canceled}");
    let again = sdk(&gateway, A2A_TOKEN, &["cancel", &slow_id]).await;
    assert_eq!(again["error"], "TaskNotCancelableError", "{again}");
    let missing = sdk(
        &gateway,
        A2A_TOKEN,
        &["get", "run_00000000000000000000000000000000"],
    )
    .await;
    assert_eq!(missing["error"], "TaskNotFoundError", "{missing}");

    // Another tenant's caller finds no such task.
    let created = env.cli(&["tenants", "create", "globex"]).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let globex = token(&env, "globex", "client").await;
    let elsewhere = sdk(&gateway, &globex, &["get", &first]).await;
    assert_eq!(elsewhere["error"], "TaskNotFoundError", "{elsewhere}");
    let theirs = sdk(&gateway, &globex, &["list"]).await;
    assert_eq!(theirs["total"], 0, "{theirs}");

    // What the SDK never sends: a version it does not speak, a method that does not
    // exist, a body that is not JSON; and a v0.3 client with v0.3 names and shapes.
    let version = rpc(
        &gateway,
        Some("9.9"),
        r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}"#,
    )
    .await;
    assert_eq!(version["error"]["code"], -32009, "{version}");
    assert_eq!(
        version["error"]["data"][0]["reason"],
        "VERSION_NOT_SUPPORTED"
    );
    let method = rpc(
        &gateway,
        Some("1.0"),
        r#"{"jsonrpc":"2.0","id":2,"method":"Nope","params":{}}"#,
    )
    .await;
    assert_eq!(method["error"]["code"], -32601, "{method}");
    let push = rpc(
        &gateway,
        Some("1.0"),
        r#"{"jsonrpc":"2.0","id":3,"method":"CreateTaskPushNotificationConfig","params":{}}"#,
    )
    .await;
    assert_eq!(push["error"]["code"], -32003, "{push}");
    let garbage = rpc(&gateway, Some("1.0"), "{not json").await;
    assert_eq!(garbage["error"]["code"], -32700, "{garbage}");
    let old = rpc(
        &gateway,
        None,
        r#"{"jsonrpc":"2.0","id":"o","method":"message/send","params":{"message":{"kind":"message","messageId":"m1","role":"user","parts":[{"kind":"text","text":"old"}]}}}"#,
    )
    .await;
    assert_eq!(old["result"]["kind"], "task", "{old}");
    assert_eq!(old["result"]["status"]["state"], "completed", "{old}");
    assert_eq!(
        old["result"]["artifacts"][0]["parts"][0],
        json!({"kind": "text", "text": "Old clients work too."})
    );
}

#[tokio::test]
async fn an_a2a_caller_answers_the_agents_question_but_never_approves_its_side_effects() {
    let env = a2a_env(vec![
        Reply::tool_call(
            "ask_text_input",
            json!({"title": "Which city?", "description": "For the trip."}),
        ),
        Reply::text("Booked for Lisbon."),
        Reply::tool_call("exec", json!({"command": "echo booked > ticket.txt"})),
        Reply::text("Ticket written."),
    ])
    .await;
    let gateway = env.serve().await;

    let asked = sdk(&gateway, A2A_TOKEN, &["send", "book a trip", "a2a:trip"]).await;
    assert_eq!(asked["state"], "TASK_STATE_INPUT_REQUIRED", "{asked}");
    assert!(
        asked["statusText"]
            .as_str()
            .unwrap()
            .contains("Which city?"),
        "{asked}"
    );
    assert_eq!(asked["statusData"][0]["type"], "text-input", "{asked}");
    let trip = asked["id"].as_str().unwrap().to_owned();
    let answered = sdk(&gateway, A2A_TOKEN, &["send", "Lisbon", "a2a:trip", &trip]).await;
    assert_eq!(
        (answered["id"].as_str(), answered["state"].as_str()),
        (Some(trip.as_str()), Some("TASK_STATE_COMPLETED")),
        "{answered}"
    );
    assert_eq!(answered["artifacts"], json!(["Booked for Lisbon."]));
    let requests = env.model.requests();
    assert!(
        crate::support::tool_results(&requests[1])
            .iter()
            .any(|(_, r)| r.contains("Lisbon")),
        "the model got the caller's answer"
    );
    let wrong_context = sdk(
        &gateway,
        A2A_TOKEN,
        &["send", "Porto", "a2a:elsewhere", &trip],
    )
    .await;
    assert_eq!(
        wrong_context["error"], "InvalidParamsError",
        "{wrong_context}"
    );
    let ended = sdk(&gateway, A2A_TOKEN, &["send", "Porto", "a2a:trip", &trip]).await;
    assert_eq!(ended["error"], "UnsupportedOperationError", "{ended}");

    // A gated call waits for the tenant's reviewers; the caller cannot approve it.
    let gated = sdk(
        &gateway,
        A2A_TOKEN,
        &["send", "write the ticket", "a2a:trip"],
    )
    .await;
    assert_eq!(gated["state"], "TASK_STATE_WORKING", "{gated}");
    assert!(
        gated["statusText"]
            .as_str()
            .unwrap()
            .contains("human reviewer"),
        "{gated}"
    );
    let ticket = gated["id"].as_str().unwrap().to_owned();
    let approve = sdk(
        &gateway,
        A2A_TOKEN,
        &["send", "approve", "a2a:trip", &ticket],
    )
    .await;
    assert_eq!(approve["error"], "UnsupportedOperationError", "{approve}");
    assert!(
        !env.workspace().join("ticket.txt").exists(),
        "nothing ran on the caller's word"
    );
    let (_, pending) = management(
        &gateway,
        TOKEN,
        reqwest::Method::GET,
        "/reviews?status=pending",
        None,
    )
    .await;
    let review = pending["reviews"][0]["id"]
        .as_str()
        .expect("a pending review")
        .to_owned();
    let (status, _) = crate::support::decide(
        &gateway,
        TOKEN,
        &review,
        json!({"response": {"selectedOption": "approve"}, "reviewer": "rita"}),
    )
    .await;
    assert_eq!(status, 200);
    let run = crate::hitl::finished_with(&gateway, TOKEN, &ticket).await;
    assert_eq!(run["status"], "completed", "{run}");
    let done = sdk(&gateway, A2A_TOKEN, &["get", &ticket]).await;
    assert_eq!(done["state"], "TASK_STATE_COMPLETED", "{done}");
    assert_eq!(done["artifacts"], json!(["Ticket written."]), "{done}");
    assert!(env.workspace().join("ticket.txt").exists());
    let (_, audit) = management(
        &gateway,
        TOKEN,
        reqwest::Method::GET,
        "/audit?type=review_decided",
        None,
    )
    .await;
    let decided = audit.to_string();
    assert!(
        decided.contains("a2a:a2a-token") && decided.contains("rita"),
        "the caller's answer and the reviewer's approval are on record as theirs: {audit}"
    );
}
