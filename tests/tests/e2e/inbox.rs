//! The review inbox page, read and answered like a reviewer does in headless Chromium:
//! Markdown descriptions that cannot run script, the arguments shown once, the reason
//! and the risk tier, a live countdown, keyboard shortcuts, the steps before the
//! question, filters, a phone-width layout and a token kept for the tab only. Every
//! review type leaves screenshots under `target/inbox-screenshots/`.

use std::path::PathBuf;

use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::hitl::{TOKEN, finished, nth_review};
use crate::support::{Env, Gateway, tool_results};

const PHONE_WIDTH: u64 = 375;

async fn gated_env(replies: Vec<Reply>) -> Env {
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    env
}

/// Posts a message and waits until its run stops (done or waiting for a human).
async fn ask(gateway: &Gateway, session: &str, content: &str) -> Value {
    let (status, run) = crate::support::management(
        gateway,
        TOKEN,
        reqwest::Method::POST,
        &format!("/sessions/{session}/messages?wait=20"),
        Some(json!({"content": content})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    run
}

/// `target/inbox-screenshots/<test>/` under the workspace root, emptied.
pub(crate) fn screenshots(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let dir = target.join("inbox-screenshots").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir.canonicalize().expect("screenshot folder path")
}

/// Runs one of `tests/browser`'s scripts and returns the JSON report it prints.
pub(crate) async fn browser(script: &str, args: &[&str]) -> Value {
    let path = format!("{}/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new("node")
        .arg(path)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (tests/run.sh installs chromium and playwright-core)");
    assert!(
        output.status.success(),
        "the browser script {script} failed (tests/run.sh installs chromium and tests/browser's playwright-core):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    for shot in report["screenshots"].as_array().into_iter().flatten() {
        println!("screenshot: {}", shot.as_str().unwrap_or_default());
    }
    report
}

/// Reads, screenshots and answers one review (see `inbox_review.mjs` for the plan).
async fn review_in_inbox(gateway: &Gateway, review_id: &str, plan: Value) -> Value {
    let report = browser(
        "inbox_review.mjs",
        &[&gateway.url, TOKEN, review_id, &plan.to_string()],
    )
    .await;
    let name = &plan["name"];
    // What holds for every review, whatever its type.
    assert!(
        report["phoneWidth"].as_u64().unwrap() <= PHONE_WIDTH,
        "{name}: nothing scrolls sideways at phone width: {report}"
    );
    assert!(
        report["headerHeight"].as_f64().unwrap() <= 48.0,
        "{name}: the header stays compact: {report}"
    );
    assert_eq!(
        report["storage"],
        json!({"session": true, "local": []}),
        "{name}: the token is kept for the tab only"
    );
    assert_eq!(
        report["seen"],
        json!({"outside": [], "dialogs": [], "errors": []}),
        "{name}: no request left the gateway, no dialog opened and no script failed"
    );
    let countdown = &report["countdown"];
    assert!(
        countdown[0].as_str().unwrap().starts_with("opened ")
            && countdown[0].as_str().unwrap().contains(" left")
            && countdown[0] != countdown[1],
        "{name}: the age and the time left are shown and tick: {countdown}"
    );
    assert_eq!(report["status"], "decided", "{report}");
    report
}

#[tokio::test]
async fn every_review_type_reads_at_a_glance_and_is_answered_in_the_inbox() {
    let markdown = "## Plan\n\nRoll out **v2.1** to _production_ in two steps:\n\n\
        1. drain `eu-west`\n2. run the migration\n\n\
        ```sh\nkubectl rollout restart deploy/api\n```\n\n\
        - see the [runbook](https://runbook.example.com/deploy)\n\
        - a [bad link](javascript:window.__xss=1) stays text\n\n\
        <img src=x onerror=\"window.__xss=2;alert(2)\"> <script>window.__xss=3</script>";
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo shipped > release.txt"})),
        Reply::tool_call(
            "ask_approval",
            json!({"title": "Deploy v2.1 to production?", "description": markdown, "timeoutS": 900}),
        ),
        Reply::tool_call(
            "ask_selection",
            json!({"title": "Pick a region", "description": "Where **v2.1** goes first.", "mode": "single",
            "items": [{"id": "eu", "label": "Europe", "description": "quiet at night"},
                      {"id": "us", "label": "United States"}]}),
        ),
        Reply::tool_call(
            "ask_form",
            json!({"title": "Release form", "description": "Fill in:\n\n- `version`: semver\n- `replicas`: 1 to 5",
            "fields": [
                {"name": "version", "type": "text", "label": "Version", "required": true},
                {"name": "channel", "type": "select", "label": "Channel", "options": [{"value": "beta", "label": "Beta"}, {"value": "stable", "label": "Stable"}]},
                {"name": "replicas", "type": "number", "label": "Replicas", "min": 1, "max": 5},
                {"name": "notify", "type": "checkbox", "label": "Notify"}]}),
        ),
        Reply::tool_call(
            "ask_text_input",
            json!({"title": "Edit the announcement", "description": "The post for the *status page*.",
            "prefill": "Hello", "markdown": true}),
        ),
        Reply::text("All answers arrived."),
    ])
    .await;
    let gateway = env.serve().await;
    let shots = screenshots("every-type");
    let shots = shots.to_str().unwrap();
    let run = ask(&gateway, "release:v2.1", "Ship v2.1, please.").await;
    let run_id = run["runId"].as_str().unwrap().to_owned();

    // A gated call, approved with the `a` key after typing an `a` into the comment.
    let gated = nth_review(&gateway, &run_id, 1).await;
    let report = review_in_inbox(
        &gateway,
        &gated,
        json!({"name": "approval-gated", "reviewer": "ivy", "answer": {"key": "a"}, "guard": true,
               "once": "echo shipped > release.txt", "screenshots": shots}),
    )
    .await;
    assert_eq!(report["once"], 1, "the arguments are shown once: {report}");
    let arguments = &report["arguments"];
    assert!(
        arguments["text"]
            .as_str()
            .unwrap()
            .contains("\"command\": \"echo shipped > release.txt\"")
            && arguments["keys"] == 1
            && arguments["strings"] == 1,
        "the arguments are highlighted JSON: {report}"
    );
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("exec affects the world outside the workspace and no rule allows it"),
        "{report}"
    );
    assert_eq!(report["risk"], "system-effect");
    assert_eq!(
        report["description"]["fences"], false,
        "no raw code fence: {report}"
    );
    assert!(
        report["detail"].as_str().unwrap().contains("release:v2.1"),
        "{report}"
    );
    assert_eq!(
        report["steps"],
        json!([{"role": "user", "text": "Ship v2.1, please.", "calls": []}]),
        "the steps before the question (the call under review is shown once, apart): {report}"
    );
    assert_eq!(
        report["guard"],
        json!({"status": "pending", "comment": "a"}),
        "a shortcut typed into a field is text: {report}"
    );
    assert!(
        report["decision"].as_str().unwrap().contains("by ivy"),
        "{report}"
    );

    // A Markdown description with hostile HTML and a javascript: link, rejected with `r`.
    let deploy = nth_review(&gateway, &run_id, 2).await;
    let report = review_in_inbox(
        &gateway,
        &deploy,
        json!({"name": "approval-markdown", "reviewer": "ivy", "answer": {"key": "r"}, "help": true,
               "unsafeClick": true, "screenshots": shots}),
    )
    .await;
    let description = &report["description"];
    let tags = &description["tags"];
    assert_eq!(tags["h4"], 1, "## is a heading: {description}");
    assert_eq!(
        (&tags["ol"], &tags["ul"], &tags["li"]),
        (&json!(1), &json!(1), &json!(4)),
        "{description}"
    );
    assert_eq!(
        (&tags["strong"], &tags["em"], &tags["pre"]),
        (&json!(1), &json!(1), &json!(1)),
        "{description}"
    );
    assert_eq!(tags["code"], 2, "inline and fenced code: {description}");
    assert_eq!(
        description["links"],
        json!([{"href": "https://runbook.example.com/deploy", "text": "runbook"}]),
        "only the http(s) link is a link: {description}"
    );
    assert_eq!(
        description["unsafe"],
        json!(["[bad link](javascript:window.__xss=1)"]),
        "{description}"
    );
    assert_eq!(
        (
            &tags["img"],
            &tags["script"],
            &tags["[onerror]"],
            &tags["[onclick]"]
        ),
        (&json!(0), &json!(0), &json!(0), &json!(0)),
        "raw HTML stays text: {description}"
    );
    let text = description["text"].as_str().unwrap();
    assert!(
        text.contains("<img src=x onerror=\"window.__xss=2;alert(2)\">")
            && text.contains("<script>window.__xss=3</script>")
            && text.contains("kubectl rollout restart deploy/api")
            && !text.contains("```"),
        "{text}"
    );
    assert_eq!(
        report["injected"]["xss"],
        Value::Null,
        "no injected script ran: {report}"
    );
    assert_eq!(report["injected"]["url"], "/inbox", "{report}");
    assert_eq!(
        report["help"],
        json!({"shown": true, "closed": true}),
        "{report}"
    );
    assert_eq!(report["risk"], "asked by the agent", "{report}");
    assert!(
        report["countdown"][0].as_str().unwrap().contains(" min "),
        "a 15-minute review counts down in minutes and seconds: {report}"
    );
    assert!(
        report["decision"]
            .as_str()
            .unwrap()
            .contains("\"selectedOption\": \"reject\""),
        "{report}"
    );
    let steps = report["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["role"] == "tool"),
        "the gated call's result is among the steps: {report}"
    );

    let selection = nth_review(&gateway, &run_id, 3).await;
    let report = review_in_inbox(
        &gateway,
        &selection,
        json!({"name": "selection", "reviewer": "ivy", "answer": {"select": ["us"]}, "screenshots": shots}),
    )
    .await;
    assert_eq!(report["description"]["tags"]["strong"], 1, "{report}");
    assert!(
        report["detail"]
            .as_str()
            .unwrap()
            .contains("quiet at night"),
        "{report}"
    );

    let form = nth_review(&gateway, &run_id, 4).await;
    let report = review_in_inbox(
        &gateway,
        &form,
        json!({"name": "form", "reviewer": "ivy", "screenshots": shots,
               "answer": {"fields": {"version": "2.1.0", "channel": "stable", "replicas": 3, "notify": true}}}),
    )
    .await;
    assert_eq!(report["description"]["tags"]["li"], 2, "{report}");

    // The text input is answered at phone width.
    let text = nth_review(&gateway, &run_id, 5).await;
    let report = review_in_inbox(
        &gateway,
        &text,
        json!({"name": "text-input", "reviewer": "ivy", "phoneAnswer": true, "screenshots": shots,
               "answer": {"text": "Hello, **v2.1** is out."}}),
    )
    .await;
    assert!(
        report["phoneWidthAfter"].as_u64().unwrap() <= PHONE_WIDTH,
        "{report}"
    );
    assert_eq!(report["description"]["tags"]["em"], 1, "{report}");

    let done = finished(&gateway, &run_id).await;
    assert_eq!(done["content"], "All answers arrived.");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("release.txt")).unwrap(),
        "shipped\n"
    );
    let results: Vec<String> = env
        .model
        .requests()
        .iter()
        .skip(1)
        .filter_map(|r| tool_results(r).into_iter().next_back().map(|(_, c)| c))
        .collect();
    assert!(
        results[1].contains("\"selectedOption\":\"reject\""),
        "{results:?}"
    );
    assert!(results[2].contains("[\"us\"]"), "{results:?}");
    assert!(
        results[3].contains("\"version\":\"2.1.0\"")
            && results[3].contains("\"channel\":\"stable\"")
            && results[3].contains("\"replicas\":3")
            && results[3].contains("\"notify\":true"),
        "{results:?}"
    );
    assert!(
        results[4].contains("Hello, **v2.1** is out."),
        "{results:?}"
    );
}

#[tokio::test]
async fn the_inbox_filters_by_session_and_type_and_moves_with_j_and_k() {
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo alpha"})),
        Reply::tool_call(
            "ask_selection",
            json!({"title": "Pick a colour", "mode": "multi",
            "items": [{"id": "red", "label": "Red"}, {"id": "blue", "label": "Blue"}]}),
        ),
        Reply::tool_call(
            "ask_text_input",
            json!({"title": "Name the release", "prefill": "v2"}),
        ),
        Reply::text("Echoed."),
    ])
    .await;
    let gateway = env.serve().await;
    let mut opened = Vec::new();
    for (session, title) in [
        ("ops:alpha", "Allow exec: echo alpha?"),
        ("ops:beta", "Pick a colour"),
        ("ops:gamma", "Name the release"),
    ] {
        let run = ask(&gateway, session, "Go on.").await;
        assert_eq!(run["status"], "awaiting_review", "{run}");
        opened.push((run["reviews"][0].as_str().unwrap().to_owned(), title));
    }
    let shots = screenshots("navigation");
    let report = browser(
        "inbox_navigate.mjs",
        &[
            &gateway.url,
            TOKEN,
            &json!({"pending": 3, "session": "ops:beta", "type": "approval", "approve": opened[0].0,
                    "screenshots": shots})
            .to_string(),
        ],
    )
    .await;
    assert_eq!(
        report["migrated"],
        json!({"session": true, "local": []}),
        "a token left in localStorage moves to sessionStorage: {report}"
    );
    assert_eq!(report["tokenFieldHidden"], true, "signed in: {report}");
    assert_eq!(report["reviewer"], "kim");
    let listed: Vec<&str> = report["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut ids: Vec<&str> = opened.iter().map(|(id, _)| id.as_str()).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    ids.sort();
    assert_eq!(sorted, ids, "every pending review is listed: {report}");
    assert_eq!(report["afterJ"], listed[0], "{report}");
    assert_eq!(report["afterJJ"], listed[1], "{report}");
    assert_eq!(report["afterJJK"], listed[0], "{report}");
    let first_title = opened.iter().find(|(id, _)| id == listed[0]).unwrap().1;
    assert_eq!(report["title"], first_title, "{report}");
    assert_eq!(
        report["whileTyping"],
        json!({"selected": listed[0], "reviewer": "kimjjka"}),
        "keys typed into a field stay in the field: {report}"
    );
    assert_eq!(report["bySession"], json!([opened[1].0]), "{report}");
    assert_eq!(report["byType"], json!([opened[0].0]), "{report}");
    assert_eq!(
        report["unfiltered"].as_array().unwrap().len(),
        3,
        "{report}"
    );
    let still: Vec<&str> = listed
        .iter()
        .copied()
        .filter(|id| *id != opened[0].0)
        .collect();
    assert_eq!(
        report["afterDecision"]["pending"],
        json!(still),
        "the approved review left the pending list: {report}"
    );
    assert_eq!(
        report["afterDecision"]["selected"], still[0],
        "j after a decision opens the next waiting review: {report}"
    );
    assert!(
        report["afterDecision"]["recent"][0]
            .as_str()
            .unwrap()
            .contains("approve · kim"),
        "the recent list says how it was decided: {report}"
    );
    assert!(
        report["listPhoneWidth"].as_u64().unwrap() <= PHONE_WIDTH,
        "{report}"
    );
    assert_eq!(
        report["afterReload"],
        json!({"session": true, "local": []}),
        "{report}"
    );
    assert_eq!(
        report["afterSignOut"],
        json!({"session": false, "local": [], "tokenFieldVisible": true, "listed": 0}),
        "{report}"
    );
    assert_eq!(
        report["seen"],
        json!({"outside": [], "dialogs": [], "errors": []}),
        "{report}"
    );
}
