//! The MCP client against real MCP servers from the registries: npm
//! `@modelcontextprotocol/server-everything` over stdio and over streamable HTTP, and a
//! PyPI `mcp` server. Tools appear as `mcp_<server>_<tool>`, are gated by the policy,
//! return errors as results, survive their server being killed, pick up
//! `notifications/tools/list_changed`, get `${credentials.KEY}` without the model ever
//! seeing the value, and are managed per tenant through `/api/v1/mcp` and `manage_mcp`.

use std::time::Duration;

use facio_tests::model::Reply;
use facio_tests::process::free_port;
use reqwest::Method;
use serde_json::{Value, json};

use crate::hitl::{TOKEN, finished, nth_review};
use crate::support::{Env, Gateway, PATIENCE, token, tool_result_texts, tool_result_with};

const EVERYTHING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
);
const PY_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/mcp_server.py");
const SERVICE_TOKEN: &str = "svc-7f3a9c2e-never-shown";

async fn mcp_env(replies: Vec<Reply>) -> Env {
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/auth",
        json!({"hs256Secret": "mcp-test-hs256-secret-of-32-characters!"}),
    );
    env
}

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::support::management(gateway, TOKEN, method, path, body).await
}

async fn start(gateway: &Gateway, session: &str, content: &str) -> Value {
    let (status, run) = api(
        gateway,
        Method::POST,
        &format!("/sessions/{session}/messages?wait=30"),
        Some(json!({"content": content})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    run
}

async fn approve(gateway: &Gateway, review: &str) {
    let (status, body) = api(
        gateway,
        Method::POST,
        &format!("/reviews/{review}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}, "reviewer": "alice"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Polls the server's state until `done` holds for it (or panics after PATIENCE).
async fn server_until(gateway: &Gateway, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, server) = api(gateway, Method::GET, &format!("/mcp/{name}"), None).await;
        if status == 200 && done(&server) {
            return server;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the MCP server {name} never got there: {server}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The audit events of `kinds`, and `field` of each one's data.
async fn audited(gateway: &Gateway, kinds: &str, field: &str) -> (Value, Vec<String>) {
    let (_, audit) = api(
        gateway,
        Method::GET,
        &format!("/audit?type={kinds}&limit=200"),
        None,
    )
    .await;
    let values = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"][field].as_str().map(str::to_owned))
        .collect();
    (audit, values)
}

/// server-everything over streamable HTTP on `port`, killed on drop.
fn everything_http(port: u16) -> tokio::process::Child {
    tokio::process::Command::new("node")
        .arg(EVERYTHING)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start server-everything (tests/run.sh installs tests/mcp)")
}

async fn listening(port: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "port {port} never opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_stdio_server_s_tools_are_offered_gated_called_and_come_back_after_a_kill() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let marker = format!("facio-test-{nanos}");
    let mut env = mcp_env(vec![
        Reply::tool_call("mcp_everything_echo", json!({"message": "hi"})),
        Reply::tool_call("mcp_everything_get-sum", json!({"a": 2, "b": 3})),
        Reply::tool_call("mcp_everything_get-sum", json!({"a": "two"})),
        Reply::tool_call("mcp_everything_nope", json!({})),
        Reply::text("Echoed and summed."),
        Reply::tool_call("mcp_everything_echo", json!({"message": "again"})),
        Reply::text("Back."),
    ])
    .await;
    env.set(
        "/tools",
        json!({"mcpServers": {"everything": {
            "type": "stdio",
            "command": "node",
            "args": [EVERYTHING, "stdio", marker],
            "enabledTools": ["echo", "get-sum", "get-env"],
        }}}),
    );
    env.set(
        "/policy",
        json!({"rules": [{"action": "allow", "tool": "mcp_everything_get-sum"}]}),
    );
    let gateway = env.serve().await;

    let run = start(&gateway, "mcp:stdio", "Echo hi, then add 2 and 3.").await;
    // The model was offered the server's enabled tools under their prefixed names.
    let offered = env.model.requests()[0].tool_names();
    for name in [
        "mcp_everything_echo",
        "mcp_everything_get-sum",
        "mcp_everything_get-env",
    ] {
        assert!(
            offered.iter().any(|n| n == name),
            "{name} not in {offered:?}"
        );
    }
    assert!(
        !offered.iter().any(|n| n == "mcp_everything_get-tiny-image"),
        "a tool left out of enabledTools is not offered: {offered:?}"
    );
    // An MCP tool is system-effect by default: the echo waits for a human.
    assert_eq!(run["status"], "awaiting_review", "{run}");
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let review = run["reviews"][0].as_str().unwrap().to_owned();
    let (_, shown) = api(&gateway, Method::GET, &format!("/reviews/{review}"), None).await;
    assert_eq!(shown["tool"], "mcp_everything_echo", "{shown}");
    approve(&gateway, &review).await;
    let done = finished(&gateway, &run_id).await;
    assert_eq!(done["status"], "completed", "{done}");

    assert!(tool_result_with(&env, "Echo: hi").contains("Echo: hi"));
    // The allow rule let get-sum run without a review, once.
    let (_, reviews) = api(&gateway, Method::GET, "/reviews?session=mcp:stdio", None).await;
    assert_eq!(
        reviews["reviews"].as_array().map(Vec::len),
        Some(1),
        "{reviews}"
    );
    assert!(tool_result_with(&env, "5").contains("The sum of 2 and 3 is 5"));
    // A tool that fails answers with an error result; an unknown one names the tools.
    let results = tool_result_texts(&env);
    assert!(
        results.iter().any(|r| r.contains("\"type\":\"failed\"")
            && r.contains("the tool ran and reported this error")),
        "{results:#?}"
    );
    let unknown = tool_result_with(&env, "mcp_everything_nope");
    assert!(
        unknown.contains("unknown_tool") && unknown.contains("mcp_everything_echo"),
        "{unknown}"
    );

    let before = server_until(&gateway, "everything", |s| s["status"] == "ready").await;
    assert_eq!(before["connects"], 1, "{before}");
    assert_eq!(before["source"], "config");
    // server-everything predates 2026-07-28: the client fell back to `initialize`.
    assert_eq!(before["protocolVersion"], "2025-11-25", "{before}");

    // The server dies mid-session: the node starts it again, and the next call works.
    let killed = std::process::Command::new("pkill")
        .args(["-9", "-f", &marker])
        .status()
        .unwrap();
    assert!(killed.success(), "the stdio server was running");
    server_until(&gateway, "everything", |s| {
        s["status"] == "ready" && s["connects"] == 2
    })
    .await;
    let run = start(&gateway, "mcp:stdio", "Echo again.").await;
    let review = nth_review(&gateway, run["runId"].as_str().unwrap(), 1).await;
    approve(&gateway, &review).await;
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(tool_result_with(&env, "Echo: again").contains("Echo: again"));

    // The calls are on record like any tool's.
    let (audit, tools) = audited(&gateway, "tool_call", "tool").await;
    assert!(tools.iter().any(|t| t == "mcp_everything_echo"), "{audit}");
}

#[tokio::test]
async fn a_streamable_http_server_is_managed_per_tenant_and_survives_its_restart() {
    let port = free_port().unwrap();
    let mut server = everything_http(port);
    listening(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let env = mcp_env(vec![
        Reply::tool_call("mcp_web_echo", json!({"message": "over http"})),
        Reply::text("One."),
        Reply::tool_call("mcp_web_echo", json!({"message": "while down"})),
        Reply::text("Two."),
        Reply::tool_call("mcp_web_echo", json!({"message": "after restart"})),
        Reply::text("Three."),
        Reply::text("Four."),
    ])
    .await;
    let gateway = env.serve().await;

    // Bad definitions are refused with the field named, and nothing is stored.
    let (status, bad) = api(
        &gateway,
        Method::POST,
        "/mcp",
        Some(json!({"name": "web", "type": "streamableHttp"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad.to_string().contains("url"), "{bad}");
    let (status, bad) = api(
        &gateway,
        Method::POST,
        "/mcp",
        Some(json!({"name": "my_web", "type": "streamableHttp", "url": url})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");

    let (status, added) = api(
        &gateway,
        Method::POST,
        "/mcp",
        Some(json!({"name": "web", "type": "streamableHttp", "url": url,
                    "riskTier": "read-only", "headers": {"X-Api-Key": "typed-in-secret"}})),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let added = server_until(&gateway, "web", |s| s["status"] == "ready").await;
    assert!(
        added["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "mcp_web_echo"),
        "{added}"
    );
    assert_eq!(
        added["definition"]["headers"]["X-Api-Key"], "[hidden]",
        "{added}"
    );
    let (status, _) = api(
        &gateway,
        Method::POST,
        "/mcp",
        Some(json!({"name": "web", "type": "streamableHttp", "url": url})),
    )
    .await;
    assert_eq!(status, 409, "a name is taken once");

    // A tenant's operator may add HTTP servers but never one the node would run as a
    // process; and it does not see the default tenant's servers.
    let (status, created) = api(
        &gateway,
        Method::POST,
        "/tenants",
        Some(json!({"name": "acme"})),
    )
    .await;
    assert!(status == 201 || status == 200, "{created}");
    let acme = token(&env, "acme", "operator").await;
    let (status, refused) = crate::support::management(
        &gateway,
        &acme,
        Method::POST,
        "/mcp",
        Some(json!({"name": "shell", "type": "stdio", "command": "sh", "args": ["-c", "id"]})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, listed) =
        crate::support::management(&gateway, &acme, Method::GET, "/mcp", None).await;
    assert_eq!(
        (status, listed["servers"].clone()),
        (200, json!([])),
        "{listed}"
    );
    let (status, _) =
        crate::support::management(&gateway, &acme, Method::GET, "/mcp/web", None).await;
    assert_eq!(status, 404, "another tenant's server is not found");

    // Read-only by its definition: the call runs without a review.
    let run = start(&gateway, "mcp:http", "Echo over http.").await;
    assert_eq!(run["status"], "completed", "{run}");
    assert!(tool_result_with(&env, "Echo: over http").contains("Echo: over http"));

    // The server goes away: the call comes back as a structured error and the turn
    // still completes.
    server.kill().await.unwrap();
    let run = start(&gateway, "mcp:http", "Echo while it is down.").await;
    assert_eq!(run["status"], "completed", "{run}");
    let down = tool_result_with(&env, "MCP server web");
    assert!(
        down.contains("unavailable") || down.contains("failed"),
        "{down}"
    );

    // It comes back on the same port: the node reconnects, the next call works.
    let _server = everything_http(port);
    listening(port).await;
    server_until(&gateway, "web", |s| s["status"] == "ready").await;
    let run = start(&gateway, "mcp:http", "Echo after the restart.").await;
    assert_eq!(run["status"], "completed", "{run}");
    assert!(tool_result_with(&env, "Echo: after restart").contains("Echo: after restart"));
    // A restart asked for reconnects at once.
    let (_, before) = api(&gateway, Method::GET, "/mcp/web", None).await;
    let (status, restarted) = api(&gateway, Method::POST, "/mcp/web/restart", None).await;
    assert_eq!(
        (status, &restarted["status"]),
        (200, &json!("ready")),
        "{restarted}"
    );
    assert_eq!(
        restarted["connects"].as_u64(),
        before["connects"].as_u64().map(|n| n + 1),
        "{restarted}"
    );

    // A patch changes one field and keeps the rest.
    let (status, patched) = api(
        &gateway,
        Method::PATCH,
        "/mcp/web",
        Some(json!({"toolTimeoutS": 30})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (
            &patched["definition"]["toolTimeoutS"],
            &patched["definition"]["riskTier"]
        ),
        (&json!(30), &json!("read-only")),
        "{patched}"
    );
    let (status, bad) = api(
        &gateway,
        Method::PATCH,
        "/mcp/web",
        Some(json!({"command": "sh"})),
    )
    .await;
    assert_eq!(
        status, 400,
        "a patch that makes the definition invalid is refused: {bad}"
    );
    server_until(&gateway, "web", |s| s["status"] == "ready").await;

    // Disabled, its tools are no longer offered; removed, it is gone.
    let (status, disabled) = api(&gateway, Method::POST, "/mcp/web/disable", None).await;
    assert_eq!(
        (status, &disabled["status"]),
        (200, &json!("disabled")),
        "{disabled}"
    );
    start(&gateway, "mcp:http", "Anything?").await;
    let last = env.model.requests().last().unwrap().tool_names();
    assert!(!last.iter().any(|n| n.starts_with("mcp_web_")), "{last:?}");
    let (status, _) = api(&gateway, Method::DELETE, "/mcp/web", None).await;
    assert_eq!(status, 204);
    let (status, _) = api(&gateway, Method::GET, "/mcp/web", None).await;
    assert_eq!(status, 404);

    // Every change is on record, with who made it and no header value.
    let (audit, actions) = audited(&gateway, "mcp_server_changed", "action").await;
    for action in ["added", "restarted", "disabled", "removed"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing: {audit}"
        );
    }
    assert!(!audit.to_string().contains("typed-in-secret"), "{audit}");
}

#[tokio::test]
async fn a_python_server_gets_its_credential_unseen_and_its_new_tools_are_offered() {
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut env = mcp_env(vec![
        Reply::tool_call("mcp_py_whoami", json!({})),
        Reply::tool_call("mcp_py_grow", json!({})),
        Reply::text("Grown."),
        Reply::tool_call("mcp_py_late", json!({"text": "x"})),
        Reply::tool_call("mcp_py_fail", json!({"reason": "no such order"})),
        Reply::text("Late."),
    ])
    .await;
    env.set(
        "/tools",
        json!({"mcpServers": {"py": {
            "type": "stdio",
            "command": python,
            "args": [PY_SERVER],
            "env": {"SERVICE_TOKEN": "${credentials.SERVICE_TOKEN}"},
            "riskTier": "read-only",
        }}}),
    );
    let gateway = env.serve().await;
    let (status, _) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "SERVICE_TOKEN", "value": SERVICE_TOKEN})),
    )
    .await;
    assert_eq!(status, 201);

    let run = start(&gateway, "mcp:py", "Who are you? Then grow.").await;
    assert_eq!(run["status"], "completed", "{run}");
    // The server got the value; the model only ever saw it redacted.
    let whoami = tool_result_with(&env, "token=");
    assert!(whoami.contains("[REDACTED:SERVICE_TOKEN]"), "{whoami}");
    for request in env.model.requests() {
        assert!(
            !request.body.to_string().contains(SERVICE_TOKEN),
            "the value reached the model"
        );
    }
    // `grow` announced a new tool: the next model call is offered it, no restart.
    let server = server_until(&gateway, "py", |s| {
        s["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "mcp_py_late"))
    })
    .await;
    assert_eq!(server["connects"], 1, "no reconnect was needed: {server}");
    // mcp 2 speaks the current protocol: no `initialize`, notifications by subscription.
    assert_eq!(server["protocolVersion"], "2026-07-28", "{server}");
    let run = start(&gateway, "mcp:py", "Use the new tool.").await;
    assert_eq!(run["status"], "completed", "{run}");
    let offered = env.model.requests()[3].tool_names();
    assert!(offered.iter().any(|n| n == "mcp_py_late"), "{offered:?}");
    assert!(tool_result_with(&env, "late:x").contains("late:x"));
    // The SDK keeps the exception's text to itself; the failure still comes back as
    // an error result, and the turn goes on.
    let failed = tool_result_with(&env, "Error executing tool fail");
    assert!(
        failed.contains("\"type\":\"failed\""),
        "a failing tool is an error result: {failed}"
    );
    let (_, audit) = api(&gateway, Method::GET, "/audit?limit=200", None).await;
    assert!(
        !audit.to_string().contains(SERVICE_TOKEN),
        "the value is not in the audit log"
    );
}

#[tokio::test]
async fn manage_mcp_waits_for_a_human_even_with_the_gates_off_and_adds_no_process() {
    let port = free_port().unwrap();
    let _server = everything_http(port);
    listening(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut env = mcp_env(vec![
        Reply::tool_call(
            "manage_mcp",
            json!({"action": "add", "name": "shell",
                   "server": {"type": "stdio", "command": "sh", "args": ["-c", "touch pwned"]}}),
        ),
        Reply::tool_call(
            "manage_mcp",
            json!({"action": "add", "name": "docs", "server": {"type": "streamableHttp", "url": url}}),
        ),
        Reply::text("Added."),
        Reply::tool_call("mcp_docs_echo", json!({"message": "from the agent's server"})),
        Reply::text("Used."),
    ])
    .await;
    // Every gate off: what manage_mcp does still waits for a human.
    env.set("/policy", json!({"enabled": false}));
    let gateway = env.serve().await;

    let run = start(&gateway, "mcp:manage", "Add a docs server.").await;
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let first = nth_review(&gateway, &run_id, 1).await;
    approve(&gateway, &first).await;
    // Even approved, the agent cannot add a server the node would run as a process.
    let second = nth_review(&gateway, &run_id, 2).await;
    let refused = tool_result_with(&env, "stdio server");
    assert!(refused.contains("denied"), "{refused}");
    assert!(!env.workspace().join("pwned").exists());
    approve(&gateway, &second).await;
    let done = finished(&gateway, &run_id).await;
    assert_eq!(done["status"], "completed", "{done}");

    let (status, docs) = api(&gateway, Method::GET, "/mcp/docs", None).await;
    assert_eq!((status, &docs["source"]), (200, &json!("tenant")), "{docs}");
    assert_eq!(docs["definition"]["riskTier"], "system-effect", "{docs}");
    // With the gates off the agent's new tool runs; its server is on record as the agent's.
    let run = start(&gateway, "mcp:manage", "Use it.").await;
    assert_eq!(run["status"], "completed", "{run}");
    assert!(tool_result_with(&env, "from the agent's server").contains("Echo:"));
    let (_, audit) = api(
        &gateway,
        Method::GET,
        "/audit?type=mcp_server_changed",
        None,
    )
    .await;
    let event = &audit["events"][0];
    assert_eq!(
        (
            &event["actor"],
            &event["data"]["action"],
            &event["data"]["surface"]
        ),
        (&json!("agent"), &json!("added"), &json!("manage_mcp")),
        "{audit}"
    );
}
