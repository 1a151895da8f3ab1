//! Human-in-the-loop through the management API: gated tool calls wait for a
//! decision that survives a crash, run exactly once, and leave a full audit trail.

use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::postgres::Backend;
use crate::support::{Env, Gateway, PATIENCE, http, request_text, tool_results};

pub(crate) const TOKEN: &str = "mgmt-test-token";

async fn gated_env(replies: Vec<Reply>) -> Env {
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    env
}

async fn api(
    gateway: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    crate::support::management(gateway, TOKEN, method, path, body).await
}

async fn ask(gateway: &Gateway, session: &str, content: &str) -> Value {
    let (status, run) = api(
        gateway,
        reqwest::Method::POST,
        &format!("/sessions/{session}/messages?wait=20"),
        Some(json!({"content": content})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    run
}

/// Follows the run's SSE events until it ends and returns its final state.
pub(crate) async fn finished(gateway: &Gateway, run_id: &str) -> Value {
    finished_with(gateway, TOKEN, run_id).await
}

/// [`finished`] with another management token.
pub(crate) async fn finished_with(gateway: &Gateway, token: &str, run_id: &str) -> Value {
    let response = http()
        .get(format!("{}/api/v1/runs/{run_id}/events", gateway.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(PATIENCE, response.text())
        .await
        .expect("the run ended")
        .unwrap();
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .expect("at least one event");
    serde_json::from_str(last).unwrap()
}

/// Follows the run's SSE events until it waits on its `n`th review; returns that id.
pub(crate) async fn nth_review(gateway: &Gateway, run_id: &str, n: usize) -> String {
    crate::support::follow_run(gateway, TOKEN, run_id, |run| {
        let reviews = run["reviews"].as_array()?;
        (run["status"] == "awaiting_review" && reviews.len() >= n)
            .then(|| reviews[n - 1].as_str().map(str::to_owned))
            .flatten()
    })
    .await
    .unwrap_or_else(|| panic!("the run ended before its review {n}"))
}

#[tokio::test]
async fn a_gated_command_waits_for_approval_runs_once_and_is_audited() {
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo approved >> proof.txt"})),
        Reply::text("Done: the file is written."),
    ])
    .await;
    let gateway = env.serve().await;

    let unauthorized = http()
        .get(format!("{}/api/v1/reviews", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let wrong = http()
        .get(format!("{}/api/v1/reviews", gateway.url))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        !wrong.text().await.unwrap().contains("nope"),
        "the token is never echoed"
    );

    let run = ask(&gateway, "hitl:one", "Write the proof file.").await;
    assert_eq!(run["status"], "awaiting_review", "{run}");
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    assert!(
        !env.workspace().join("proof.txt").exists(),
        "nothing ran before the decision"
    );

    let (_, pending) = api(
        &gateway,
        reqwest::Method::GET,
        "/reviews?status=pending",
        None,
    )
    .await;
    let review = &pending["reviews"][0];
    assert_eq!(
        (
            review["id"].as_str(),
            review["type"].as_str(),
            review["tool"].as_str()
        ),
        (Some(review_id.as_str()), Some("approval"), Some("exec"))
    );
    assert_eq!(
        review["context"]["arguments"]["command"],
        "echo approved >> proof.txt"
    );
    assert_eq!(review["payload"]["options"][0]["id"], "approve");
    assert_eq!(review["sessionKey"], "hitl:one");

    let (status, bad) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "maybe"}})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let decide = json!({"response": {"selectedOption": "approve"}, "reviewer": "alice"});
    let (status, decided) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(decide.clone()),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "decided");
    let (status, again) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(decide),
    )
    .await;
    assert_eq!(status, 409, "{again}");

    let done = finished(&gateway, &run_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["content"], "Done: the file is written.");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("proof.txt")).unwrap(),
        "approved\n",
        "ran exactly once"
    );
    assert_eq!(env.model.requests().len(), 2);
    assert!(
        tool_results(&env.model.requests()[1])[0]
            .1
            .contains("exit code: 0")
    );

    let (_, audit) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/audit?run={run_id}"),
        None,
    )
    .await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in [
        "review_requested",
        "review_delivered",
        "review_decided",
        "tool_call",
        "turn_finished",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let (_, by_run) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/audit/runs/{run_id}"),
        None,
    )
    .await;
    assert_eq!(
        by_run["events"], audit["events"],
        "the per-run view holds the same events"
    );
    let (_, stats) = api(&gateway, reqwest::Method::GET, "/audit/stats", None).await;
    assert_eq!(stats["chain"]["verified"], true, "{stats}");
    assert_eq!(stats["byType"]["review_decided"], 1);
    let (_, tail) = api(&gateway, reqwest::Method::GET, "/audit/tail?limit=2", None).await;
    assert_eq!(tail["events"].as_array().unwrap().len(), 2);
    let decided_event = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "review_decided")
        .unwrap();
    assert_eq!(decided_event["actor"], "alice");
    assert_eq!(decided_event["data"]["reviewer"], "alice");
}

#[tokio::test]
async fn a_pending_review_survives_kill_9_and_the_call_runs_once_after_restart() {
    pending_review_survives_kill_9(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_pending_review_survives_kill_9_on_postgres() {
    pending_review_survives_kill_9(Backend::Postgres).await;
}

async fn pending_review_survives_kill_9(backend: Backend) {
    let mut env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo once >> count.txt"})),
        Reply::text("Counted after the restart."),
    ])
    .await;
    let Ok(database) = backend.apply(&mut env).await else {
        return;
    };
    let first = env.serve().await;
    let run = ask(&first, "hitl:crash", "Count once.").await;
    assert_eq!(run["status"], "awaiting_review", "{run}");
    let (run_id, review_id) = (
        run["runId"].as_str().unwrap().to_owned(),
        run["reviews"][0].as_str().unwrap().to_owned(),
    );
    first.process.kill().await.unwrap();

    let second = env.serve().await;
    let (_, review) = api(
        &second,
        reqwest::Method::GET,
        &format!("/reviews/{review_id}"),
        None,
    )
    .await;
    assert_eq!(review["status"], "pending", "{review}");
    let (status, _) = api(
        &second,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}})),
    )
    .await;
    assert_eq!(status, 200);
    let done = finished(&second, &run_id).await;
    assert_eq!(
        (done["status"].as_str(), done["content"].as_str()),
        (Some("completed"), Some("Counted after the restart.")),
        "{done}"
    );
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("count.txt")).unwrap(),
        "once\n"
    );
    drop(second);
    if let Some(database) = database {
        database.drop_it().await;
    }
}

#[tokio::test]
async fn rejections_rules_and_hitl_tools_reach_the_model_as_structured_results() {
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "curl https://example.com"})),
        Reply::text("Understood, I will not fetch it."),
        Reply::tool_call("exec", json!({"command": "rm   -rf  data"})),
        Reply::tool_call(
            "ask_text_input",
            json!({"title": "Edit the draft", "prefill": "Dear team,"}),
        ),
        Reply::text("Sent the edited draft."),
    ])
    .await;
    let gateway = env.serve().await;

    let run = ask(&gateway, "hitl:rules", "Fetch it.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    let reject = json!({"response": {"selectedOption": "reject", "comment": "not today"}, "reviewer": "bob"});
    let (status, _) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(reject),
    )
    .await;
    assert_eq!(status, 200);
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "Understood, I will not fetch it.");
    let refused = &tool_results(&env.model.requests()[1])[0].1;
    assert!(
        refused.contains("bob rejected this call") && refused.contains("not today"),
        "{refused}"
    );

    let (status, policy) = api(
        &gateway,
        reqwest::Method::POST,
        "/policy",
        Some(json!({"action": "deny", "tool": "exec", "params": {"command": "rm *"}})),
    )
    .await;
    assert_eq!(status, 200, "{policy}");
    assert_eq!(policy["rules"][0]["action"], "deny");
    let (status, invalid) = api(
        &gateway,
        reqwest::Method::POST,
        "/policy",
        Some(json!({"action": "sometimes", "tool": "exec"})),
    )
    .await;
    assert_eq!(status, 422, "{invalid}");

    let run = ask(&gateway, "hitl:rules", "Clean up, then draft the mail.").await;
    assert_eq!(
        run["status"], "awaiting_review",
        "the text input waits: {run}"
    );
    let denied = tool_results(&env.model.requests()[3])
        .last()
        .unwrap()
        .1
        .clone();
    assert!(
        denied.contains("policy refused"),
        "an altered rm still hits the deny rule: {denied}"
    );
    let text_review = run["reviews"][0].as_str().unwrap().to_owned();
    let (_, review) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/reviews/{text_review}"),
        None,
    )
    .await;
    assert_eq!(
        (
            review["type"].as_str(),
            review["payload"]["prefill"].as_str()
        ),
        (Some("text-input"), Some("Dear team,"))
    );
    let (status, _) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{text_review}/decide"),
        Some(json!({"response": {"text": "Dear team, ship it."}})),
    )
    .await;
    assert_eq!(status, 200);
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "Sent the edited draft.");
    assert!(request_text(&env.model.requests()[4]).contains("Dear team, ship it."));
}

#[tokio::test]
async fn an_unanswered_review_times_out_and_the_call_does_not_run() {
    let env = gated_env(vec![
        Reply::tool_call(
            "ask_approval",
            json!({"title": "Deploy?", "description": "v2", "timeoutS": 1}),
        ),
        Reply::text("Nobody answered, so I did not deploy."),
    ])
    .await;
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:timeout", "Deploy if approved.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    let (_, closed) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/reviews/{review_id}/wait?timeout=10000"),
        None,
    )
    .await;
    assert_eq!(closed["status"], "expired", "{closed}");
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "Nobody answered, so I did not deploy.");
    assert!(
        tool_results(&env.model.requests()[1])[0]
            .1
            .contains("timed_out")
    );
    let (status, _) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}})),
    )
    .await;
    assert_eq!(status, 409, "a late decision changes nothing");
}

#[tokio::test]
async fn a_reviewer_approves_from_the_cli() {
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo from-cli > cli.txt"})),
        Reply::text("Approved from the terminal."),
    ])
    .await;
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:cli", "Write it.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    let connection = ["--url", gateway.url.as_str(), "--token", TOKEN];

    let list = env
        .cli(&[&["reviews", "list", "--status", "pending"][..], &connection].concat())
        .await;
    let listed = crate::support::stdout(&list);
    assert!(
        list.status.success() && listed.contains(&review_id) && listed.contains("exec"),
        "{listed}"
    );
    let approve = env
        .cli(
            &[
                &["reviews", "approve", &review_id, "--reviewer", "carol"][..],
                &connection,
            ]
            .concat(),
        )
        .await;
    assert!(
        approve.status.success(),
        "{}",
        crate::support::stderr(&approve)
    );
    assert!(crate::support::stdout(&approve).contains("decided by carol"));
    let again = env
        .cli(
            &[
                &["reviews", "approve", &review_id, "--reviewer", "carol"][..],
                &connection,
            ]
            .concat(),
        )
        .await;
    assert!(!again.status.success());
    assert!(
        crate::support::stderr(&again).contains("409"),
        "{}",
        crate::support::stderr(&again)
    );

    // No name given and none in the environment: refused, not recorded as someone.
    let nameless = tokio::process::Command::new(crate::support::facio_bin())
        .args([&["reviews", "approve", &review_id][..], &connection].concat())
        .arg("--config")
        .arg(env.config_path())
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .await
        .unwrap();
    assert!(!nameless.status.success());
    assert!(
        crate::support::stderr(&nameless).contains("--reviewer"),
        "{}",
        crate::support::stderr(&nameless)
    );

    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "Approved from the terminal.");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("cli.txt")).unwrap(),
        "from-cli\n"
    );
}

/// Answers a review in the inbox page with real clicks and typing in headless Chromium;
/// returns what the script saw (`context`: the review's detail text).
async fn answer_in_inbox(
    gateway: &Gateway,
    review_id: &str,
    reviewer: &str,
    answer: Value,
    screenshot: Option<&std::path::Path>,
) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/inbox_answer.mjs");
    let mut command = tokio::process::Command::new("node");
    command.arg(script).args([
        gateway.url.as_str(),
        TOKEN,
        review_id,
        reviewer,
        &answer.to_string(),
    ]);
    if let Some(path) = screenshot {
        command.arg(path);
    }
    let output = command
        .output()
        .await
        .expect("run node (tests/run.sh installs chromium and playwright-core)");
    assert!(
        output.status.success(),
        "the browser could not answer (tests/run.sh installs chromium and tests/browser's playwright-core):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn a_reviewer_approves_in_the_inbox_with_a_real_click() {
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo clicked > inbox.txt"})),
        Reply::text("Approved in the inbox."),
    ])
    .await;
    let gateway = env.serve().await;
    let page = http()
        .get(format!("{}/inbox", gateway.url))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("Facio review inbox"));
    let run = ask(&gateway, "hitl:inbox", "Write the inbox file.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();

    let screenshot = env.dir.path().join("inbox.png");
    let report = answer_in_inbox(
        &gateway,
        &review_id,
        "dana",
        json!({"option": "approve"}),
        Some(&screenshot),
    )
    .await;
    let context = report["context"].as_str().unwrap();
    assert!(
        context.contains("echo clicked > inbox.txt") && context.contains("hitl:inbox"),
        "the reviewer saw the call: {context}"
    );

    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "Approved in the inbox.");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("inbox.txt")).unwrap(),
        "clicked\n"
    );
    let (_, audit) = api(
        &gateway,
        reqwest::Method::GET,
        &format!(
            "/audit?run={}&type=review_decided",
            run["runId"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(audit["events"][0]["data"]["reviewer"], "dana", "{audit}");
}

#[tokio::test]
async fn a_call_running_at_a_crash_comes_back_to_a_human_as_in_doubt() {
    in_doubt_after_a_crash(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_call_running_at_a_crash_comes_back_in_doubt_on_postgres() {
    in_doubt_after_a_crash(Backend::Postgres).await;
}

async fn in_doubt_after_a_crash(backend: Backend) {
    let mut env = gated_env(vec![
        Reply::tool_call(
            "exec",
            json!({"command": "echo started >> doubt.txt; sleep 30"}),
        ),
        Reply::text("I did not repeat it."),
    ])
    .await;
    env.set(
        "/policy",
        json!({"rules": [{"action": "allow", "tool": "exec"}]}),
    );
    let Ok(database) = backend.apply(&mut env).await else {
        return;
    };
    let first = env.serve().await;
    let (status, accepted) = api(
        &first,
        reqwest::Method::POST,
        "/sessions/hitl:doubt/messages",
        Some(json!({"content": "Start the job."})),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let marker = env.workspace().join("doubt.txt");
    let deadline = std::time::Instant::now() + PATIENCE;
    // The command's own side effect is the only sign it started; nothing to await on.
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    first.process.kill().await.unwrap();

    let second = env.serve().await;
    let (_, pending) = api(
        &second,
        reqwest::Method::GET,
        "/reviews?status=pending",
        None,
    )
    .await;
    let review = &pending["reviews"][0];
    assert!(
        review["title"].as_str().unwrap().starts_with("In doubt"),
        "{pending}"
    );
    assert_eq!(review["context"]["inDoubt"], true);
    assert_eq!(review["runId"], accepted["runId"]);
    let reject = json!({"response": {"selectedOption": "reject", "comment": "it already ran"}, "reviewer": "erin"});
    let (status, _) = api(
        &second,
        reqwest::Method::POST,
        &format!("/reviews/{}/decide", review["id"].as_str().unwrap()),
        Some(reject),
    )
    .await;
    assert_eq!(status, 200);
    let done = finished(&second, accepted["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "I did not repeat it.", "{done}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "started\n",
        "never silently re-run"
    );
    assert!(
        tool_results(&env.model.requests()[1])
            .last()
            .unwrap()
            .1
            .contains("it already ran")
    );
    drop(second);
    if let Some(database) = database {
        database.drop_it().await;
    }
}

#[tokio::test]
async fn gates_reach_placet_and_its_answer_resumes_the_run() {
    let placet = facio_tests::placet::PlacetStandIn::start("hp_test_key")
        .await
        .unwrap();
    let mut env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo via-placet > placet.txt"})),
        Reply::text("Placet said yes."),
    ])
    .await;
    env.set(
        "/channels",
        json!({"placet": {"instanceUrl": placet.base_url(), "apiKey": "hp_test_key", "channelId": "ch_ops",
                          "managementUrl": "http://facio.internal:8900", "waitTimeoutMs": 2000}}),
    );
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:placet", "Write via Placet.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();

    let messages = placet.wait_for_messages(1, PATIENCE).await.unwrap();
    let message = &messages[0];
    assert_eq!(message["channelId"], "ch_ops");
    assert_eq!(message["review"]["type"], "approval");
    assert_eq!(message["review"]["payload"]["options"][0]["id"], "approve");
    assert!(message["review"]["expiresInSeconds"].as_u64().unwrap() <= 36 * 3600);
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("echo via-placet"),
        "{message}"
    );
    let registration = &placet.registrations()[0];
    assert_eq!(
        registration["management"]["url"],
        "http://facio.internal:8900"
    );
    assert_eq!(registration["management"]["apiKey"], TOKEN);

    placet.answer(
        message["id"].as_str().unwrap(),
        json!({"selectedOption": "approve"}),
    );
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "Placet said yes.");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("placet.txt")).unwrap(),
        "via-placet\n"
    );
    let (_, review) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/reviews/{review_id}"),
        None,
    )
    .await;
    assert_eq!(review["decision"]["reviewer"], "placet");
    let (_, audit) = api(
        &gateway,
        reqwest::Method::GET,
        &format!(
            "/audit?run={}&type=review_delivered",
            run["runId"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let surfaces: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["surface"].as_str())
        .collect();
    assert_eq!(surfaces, ["inbox", "placet"]);
}

#[tokio::test]
async fn selections_and_forms_round_trip_and_a_caller_cannot_claim_to_be_cron() {
    let env = gated_env(vec![
        Reply::tool_call("ask_selection", json!({"title": "Which region?", "mode": "multi",
            "items": [{"id": "eu", "label": "Europe"}, {"id": "us", "label": "United States"}, {"id": "ap", "label": "Asia"}]})),
        Reply::tool_call("ask_form", json!({"title": "Release details", "fields": [
            {"name": "version", "type": "text", "label": "Version", "required": true},
            {"name": "replicas", "type": "number", "label": "Replicas", "min": 1, "max": 10},
            {"name": "notify", "type": "checkbox", "label": "Notify users"}]})),
        Reply::text("Releasing 2.1 to eu and ap."),
        Reply::tool_call("exec", json!({"command": "echo nightly > cron.txt"})),
    ])
    .await;
    let gateway = env.serve().await;

    let run = ask(&gateway, "hitl:forms", "Plan the release.").await;
    let selection = run["reviews"][0].as_str().unwrap().to_owned();
    let decide = |id: String, response: Value| {
        let gateway = &gateway;
        async move {
            api(
                gateway,
                reqwest::Method::POST,
                &format!("/reviews/{id}/decide"),
                Some(json!({"response": response})),
            )
            .await
        }
    };
    assert_eq!(
        decide(selection.clone(), json!({"selectedIds": ["eu", "mars"]}))
            .await
            .0,
        422
    );
    assert_eq!(
        decide(selection, json!({"selectedIds": ["eu", "ap"]}))
            .await
            .0,
        200
    );

    let form = nth_review(&gateway, run["runId"].as_str().unwrap(), 2).await;
    let (_, waiting) = api(
        &gateway,
        reqwest::Method::GET,
        "/reviews?status=pending&session=hitl:forms",
        None,
    )
    .await;
    assert_eq!(waiting["reviews"][0]["id"], form.as_str());
    assert_eq!(waiting["reviews"][0]["type"], "form");
    let (status, error) = decide(form.clone(), json!({"replicas": 50})).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(
        decide(
            form,
            json!({"version": "2.1", "replicas": 3, "notify": true})
        )
        .await
        .0,
        200
    );
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["content"], "Releasing 2.1 to eu and ap.");
    let seen = &env.model.requests()[2];
    let answers: Vec<String> = tool_results(seen)
        .into_iter()
        .map(|(_, content)| content)
        .collect();
    assert!(
        answers[0].contains("\"selectedIds\":[\"eu\",\"ap\"]"),
        "{answers:?}"
    );
    assert!(
        answers[1].contains("\"version\":\"2.1\"") && answers[1].contains("\"replicas\":3"),
        "{answers:?}"
    );

    let (_, _) = api(
        &gateway,
        reqwest::Method::PATCH,
        "/policy/settings",
        Some(json!({"skipCron": true})),
    )
    .await;
    // A caller cannot claim to be the scheduler: the body's origin is refused and
    // nothing runs.
    let (status, cron) = api(
        &gateway,
        reqwest::Method::POST,
        "/sessions/cron:nightly/messages?wait=20",
        Some(json!({"content": "Run the nightly job.", "origin": "cron"})),
    )
    .await;
    assert_eq!(status, 422, "{cron}");
    assert_eq!(cron["error"]["param"], "origin", "{cron}");
    assert!(!env.workspace().join("cron.txt").exists());
}

#[tokio::test]
async fn a_password_answered_in_a_form_goes_to_the_vault_and_nowhere_else() {
    const SECRET: &str = "sk-live-9f8e7d6c5b4a-do-not-leak";
    let env = gated_env(vec![
        Reply::tool_call(
            "ask_form",
            json!({"title": "Connect the billing API", "fields": [
            {"name": "account", "type": "text", "label": "Account", "required": true},
            {"name": "apiToken", "type": "password", "label": "API token", "required": true}]}),
        ),
        Reply::text("Stored the token; I will use ${credentials.API_TOKEN}."),
    ])
    .await;
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:secret", "Connect billing.").await;
    let review_id = run["reviews"][0]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "no review: {run} {:?}",
                env.model
                    .requests()
                    .iter()
                    .map(tool_results)
                    .collect::<Vec<_>>()
            )
        })
        .to_owned();
    let answer = json!({"response": {"account": "acme", "apiToken": SECRET}, "reviewer": "frank"});
    let (status, decided) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(answer),
    )
    .await;
    assert_eq!(status, 200);
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed");

    let seen = tool_results(&env.model.requests()[1])
        .last()
        .unwrap()
        .1
        .clone();
    assert!(
        seen.contains("${credentials.API_TOKEN}") && seen.contains("acme"),
        "{seen}"
    );
    let (_, audit) = api(&gateway, reqwest::Method::GET, "/audit?limit=5000", None).await;
    let credential = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "credential_changed")
        .expect("the credential change is audited");
    assert_eq!(credential["data"]["key"], "API_TOKEN");
    let (_, review) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/reviews/{review_id}"),
        None,
    )
    .await;
    let mut places = vec![
        (
            "model requests",
            env.model
                .requests()
                .iter()
                .map(|r| r.body.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("decide response", decided.to_string()),
        ("review", review.to_string()),
        ("audit", audit.to_string()),
        ("gateway output", gateway.process.output()),
    ];
    for entry in std::fs::read_dir(env.dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            places.push((
                "data file",
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
            ));
        }
    }
    for (place, text) in places {
        assert!(!text.contains(SECRET), "the secret leaked into the {place}");
    }
}

#[tokio::test]
async fn an_openai_caller_learns_a_review_is_pending_and_the_policy_timeout_denies() {
    let mut env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo never > never.txt"})),
        Reply::text("The command was not approved in time."),
        Reply::tool_call("exec", json!({"command": "echo streamed"})),
    ])
    .await;
    env.set("/policy", json!({"reviewTimeoutS": 1}));
    let gateway = env.serve().await;
    let body = json!({"model": "scripted-1", "messages": [{"role": "user", "content": "Run it."}]});
    let response = gateway.post_chat(&body, Some("hitl:openai")).await;
    assert_eq!(response.status(), 200);
    let run_id = response.headers()["x-facio-run-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let completion: Value = response.json().await.unwrap();
    let content = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(
        content.contains("human review is pending")
            && content.contains(&format!("/api/v1/runs/{run_id}")),
        "{content}"
    );

    let done = finished(&gateway, &run_id).await;
    assert_eq!(done["content"], "The command was not approved in time.");
    assert!(!env.workspace().join("never.txt").exists());
    assert!(
        tool_results(&env.model.requests()[1])
            .last()
            .unwrap()
            .1
            .contains("timed out")
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = gateway
        .post_chat(&streamed, Some("hitl:openai-stream"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("human review is pending") && text.trim_end().ends_with("data: [DONE]"),
        "{text}"
    );
}

#[tokio::test]
async fn every_review_type_can_be_answered_in_the_inbox_page() {
    let env = gated_env(vec![
        Reply::tool_call("ask_selection", json!({"title": "Pick a region", "mode": "single",
            "items": [{"id": "eu", "label": "Europe"}, {"id": "us", "label": "United States"}]})),
        Reply::tool_call("ask_form", json!({"title": "Release form", "fields": [
            {"name": "version", "type": "text", "label": "Version", "required": true},
            {"name": "channel", "type": "select", "label": "Channel", "options": [{"value": "beta", "label": "Beta"}, {"value": "stable", "label": "Stable"}]},
            {"name": "replicas", "type": "number", "label": "Replicas", "min": 1, "max": 5},
            {"name": "notify", "type": "checkbox", "label": "Notify"}]})),
        Reply::tool_call("ask_text_input", json!({"title": "Edit the announcement", "prefill": "Hello"})),
        Reply::text("All three answers arrived."),
    ])
    .await;
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:page", "Prepare the release.").await;
    let run_id = run["runId"].as_str().unwrap().to_owned();

    let selection = nth_review(&gateway, &run_id, 1).await;
    answer_in_inbox(
        &gateway,
        &selection,
        "gina",
        json!({"select": ["us"]}),
        None,
    )
    .await;
    let form = nth_review(&gateway, &run_id, 2).await;
    answer_in_inbox(
        &gateway,
        &form,
        "gina",
        json!({"fields": {"version": "3.0", "channel": "stable", "replicas": 2, "notify": true}}),
        None,
    )
    .await;
    let text = nth_review(&gateway, &run_id, 3).await;
    answer_in_inbox(
        &gateway,
        &text,
        "gina",
        json!({"text": "Hello, 3.0 is out."}),
        None,
    )
    .await;

    let done = finished(&gateway, &run_id).await;
    assert_eq!(done["content"], "All three answers arrived.");
    let answers: Vec<String> = tool_results(&env.model.requests()[3])
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert!(answers[0].contains("[\"us\"]"), "{answers:?}");
    assert!(
        answers[1].contains("\"version\":\"3.0\"")
            && answers[1].contains("\"channel\":\"stable\"")
            && answers[1].contains("\"replicas\":2")
            && answers[1].contains("\"notify\":true"),
        "{answers:?}"
    );
    assert!(answers[2].contains("Hello, 3.0 is out."), "{answers:?}");
}

#[tokio::test]
async fn an_approval_does_not_pass_a_later_call_that_reuses_its_id() {
    let call = |command: &str| Reply::ToolCallWithId {
        id: "call_0".into(),
        name: "exec".into(),
        arguments: json!({"command": command}),
    };
    let env = gated_env(vec![call("echo one > one.txt"), call("echo two > two.txt")]).await;
    let gateway = env.serve().await;
    let run = ask(&gateway, "reuse:1", "Run both.").await;
    assert_eq!(run["status"], "awaiting_review", "{run}");
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let first = run["reviews"][0].as_str().unwrap().to_owned();
    let (status, _) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{first}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}})),
    )
    .await;
    assert_eq!(status, 200);
    // The second call has the same id; the first approval must not run it.
    let second = nth_review(&gateway, &run_id, 2).await;
    assert_ne!(second, first);
    assert!(
        env.workspace().join("one.txt").exists(),
        "the approved call ran"
    );
    assert!(
        !env.workspace().join("two.txt").exists(),
        "the new call waits for its own review"
    );
}

#[tokio::test]
async fn approve_and_always_allow_adds_the_exact_rule_and_policy_changes_are_audited() {
    let mut env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo  hi"})),
        Reply::text("Said hi."),
        Reply::tool_call("exec", json!({"command": "echo hi"})),
        Reply::text("Said hi again, unasked."),
        Reply::tool_call("exec", json!({"command": "echo hi there"})),
        Reply::text("Asked first."),
    ])
    .await;
    env.set(
        "/auth",
        json!({"hs256Secret": "hitl-rule-secret-long-enough-for-hs256"}),
    );
    let reviewer = crate::support::token(&env, "default", "reviewer").await;
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:always", "Say hi.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();

    // The rule is shown before it is saved; only admins get it or may add it.
    let (status, proposed) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/reviews/{review_id}/rule"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{proposed}");
    assert_eq!(
        proposed["rule"],
        json!({"action": "allow", "tool": "exec", "params": {"command": "echo hi"}})
    );
    let (status, refused) = crate::support::management(
        &gateway,
        &reviewer,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}, "alwaysAllow": true})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, decided) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}, "alwaysAllow": true})),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["ruleAdded"]["params"]["command"], "echo hi");
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");

    // The same command now runs without a review; a different one still asks.
    let again = ask(&gateway, "hitl:always", "Say hi again.").await;
    assert_eq!(again["status"], "completed", "{again}");
    let other = ask(&gateway, "hitl:always", "Say hi there.").await;
    assert_eq!(other["status"], "awaiting_review", "{other}");
    // The CLI does the same with --always-allow.
    let review_id = other["reviews"][0].as_str().unwrap().to_owned();
    let approve = env
        .cli(&[
            "reviews",
            "approve",
            &review_id,
            "--always-allow",
            "--reviewer",
            "dana",
            "--url",
            &gateway.url,
            "--token",
            TOKEN,
        ])
        .await;
    assert!(
        approve.status.success(),
        "{}",
        crate::support::stderr(&approve)
    );
    let (_, policy) = api(&gateway, reqwest::Method::GET, "/policy", None).await;
    let commands: Vec<&str> = policy["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["params"]["command"].as_str())
        .collect();
    assert_eq!(commands, ["echo hi", "echo hi there"], "{policy}");

    // Switching every gate off is on record, with what it was before.
    let (status, _) = api(
        &gateway,
        reqwest::Method::PATCH,
        "/policy/settings",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, audit) = api(
        &gateway,
        reqwest::Method::GET,
        "/audit?type=policy_changed&limit=50",
        None,
    )
    .await;
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{audit}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["data"]["change"] == "rule_added" && e["data"]["fromReview"].is_string())
            .count(),
        2
    );
    let off = events
        .iter()
        .find(|e| e["data"]["change"] == "settings")
        .expect("the gates switched off are audited");
    assert_eq!(off["data"]["settingsBefore"]["enabled"], true);
    assert_eq!(off["data"]["settingsAfter"]["enabled"], false);
    assert_eq!(off["actor"], "management-token");

    // Search: several kinds, an actor, text in the data, pages by seq.
    let (status, page) = api(
        &gateway,
        reqwest::Method::GET,
        "/audit?type=policy_changed,review_decided&actor=management-token&after=0&limit=2",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 2, "{page}");
    let next = page["next"].as_i64().expect("a full page names the next");
    let (_, rest) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/audit?type=policy_changed,review_decided&after={next}&limit=50"),
        None,
    )
    .await;
    assert!(
        rest["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["seq"].as_i64().unwrap() > next),
        "{rest}"
    );
    let (_, found) = api(
        &gateway,
        reqwest::Method::GET,
        "/audit?q=echo%20hi%20there&type=policy_changed",
        None,
    )
    .await;
    assert_eq!(found["events"].as_array().unwrap().len(), 1, "{found}");
    let (status, _) = api(&gateway, reqwest::Method::GET, "/audit?type=bogus", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_reviewer_approves_with_edits_and_a_deny_rule_still_holds_against_them() {
    let mut env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo proposed >> edit.txt"})),
        Reply::text("Ran what the reviewer chose."),
        Reply::tool_call("exec", json!({"command": "echo again >> edit.txt"})),
        Reply::text("The edit was refused."),
    ])
    .await;
    env.set(
        "/policy",
        json!({"rules": [{"action": "deny", "tool": "exec", "params": {"command": "rm *"}}]}),
    );
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:edit", "Write it.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    let decide = |body: Value| {
        let (gateway, review_id) = (&gateway, review_id.clone());
        async move {
            api(
                gateway,
                reqwest::Method::POST,
                &format!("/reviews/{review_id}/decide"),
                Some(body),
            )
            .await
        }
    };
    // An edit the tool's schema does not take is refused, and the review stays open.
    let (status, bad) = decide(json!({"response": {"selectedOption": "approve"},
        "editedArguments": {"command": "echo x", "sudo": true}}))
    .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["param"], "editedArguments");
    let (status, _) = decide(json!({"response": {"selectedOption": "reject"},
        "editedArguments": {"command": "echo x"}}))
    .await;
    assert_eq!(status, 422, "edits go with approving only");
    let (status, decided) = decide(json!({"response": {"selectedOption": "approve"},
        "editedArguments": {"command": "echo edited >> edit.txt"}}))
    .await;
    assert_eq!(status, 200, "{decided}");
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("edit.txt")).unwrap(),
        "edited\n",
        "the call ran with the reviewer's arguments, not the proposed ones"
    );
    let seen = tool_results(&env.model.requests()[1]);
    assert!(
        seen[0].1.contains("a reviewer edited the arguments"),
        "{seen:?}"
    );
    let (_, audit) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/audit?run={}", run["runId"].as_str().unwrap()),
        None,
    )
    .await;
    let events = audit["events"].as_array().unwrap();
    let decision = events
        .iter()
        .find(|e| e["kind"] == "review_decided")
        .unwrap();
    assert_eq!(
        decision["data"]["arguments"]["command"],
        "echo proposed >> edit.txt"
    );
    assert_eq!(
        decision["data"]["response"]["editedArguments"]["command"],
        "echo edited >> edit.txt"
    );
    let ran = events.iter().find(|e| e["kind"] == "tool_call").unwrap();
    assert!(
        ran["data"]["arguments"]
            .as_str()
            .unwrap()
            .contains("echo edited"),
        "{ran}"
    );

    // An edit into something a deny rule forbids does not run.
    let second = ask(&gateway, "hitl:edit", "Again.").await;
    let review = second["reviews"][0].as_str().unwrap().to_owned();
    let approve = env
        .cli(&[
            "reviews",
            "approve",
            &review,
            "--edit",
            r#"{"command": "rm -rf edit.txt"}"#,
            "--reviewer",
            "erin",
            "--url",
            &gateway.url,
            "--token",
            TOKEN,
        ])
        .await;
    assert!(
        approve.status.success(),
        "{}",
        crate::support::stderr(&approve)
    );
    let done = finished(&gateway, second["runId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(
        env.workspace().join("edit.txt").exists(),
        "the denied edit did not run"
    );
    let refused = tool_results(env.model.requests().last().unwrap());
    let last = &refused.last().unwrap().1;
    assert!(last.contains("the policy refused"), "{refused:?}");
}

#[tokio::test]
async fn a_reviewer_edits_the_arguments_in_the_inbox_and_the_call_runs_with_them() {
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo proposed > inbox-edit.txt"})),
        Reply::text("Ran the edited command."),
    ])
    .await;
    let gateway = env.serve().await;
    let run = ask(&gateway, "hitl:inbox-edit", "Write it.").await;
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    answer_in_inbox(
        &gateway,
        &review_id,
        "fay",
        json!({"edit": {"command": "echo edited > inbox-edit.txt"}}),
        None,
    )
    .await;
    let done = finished(&gateway, run["runId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("inbox-edit.txt")).unwrap(),
        "edited\n"
    );
}

#[tokio::test]
async fn a_run_resumed_after_approval_and_a_restart_calls_the_model_it_was_asked_for() {
    let env = gated_env(vec![
        Reply::tool_call("exec", json!({"command": "echo chosen >> model.txt"})),
        Reply::text("Done on the model you chose."),
    ])
    .await;
    let first = env.serve().await;
    let body = json!({"model": "scripted-2", "messages": [{"role": "user", "content": "Run it."}]});
    let response = first.post_chat(&body, Some("hitl:model")).await;
    assert_eq!(response.status(), 200);
    let run_id = response.headers()["x-facio-run-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, run) = api(
        &first,
        reqwest::Method::GET,
        &format!("/runs/{run_id}"),
        None,
    )
    .await;
    assert_eq!(run["status"], "awaiting_review", "{run}");
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    // The requested model must be durable, not only held by the process that accepted it.
    first.process.kill().await.unwrap();

    let second = env.serve().await;
    let (status, decided) = api(
        &second,
        reqwest::Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}})),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    let done = finished(&second, &run_id).await;
    assert_eq!(done["content"], "Done on the model you chose.", "{done}");
    let models: Vec<Value> = env
        .model
        .requests()
        .iter()
        .map(|r| r.body["model"].clone())
        .collect();
    assert_eq!(
        models,
        vec![json!("scripted-2"), json!("scripted-2")],
        "the resumed run called the requested model, not agents.defaults.model"
    );
}

/// A session's queue is bounded: behind a run waiting for a human, 256 more turns
/// wait; the next is refused at once with 503 `busy` (and `Retry-After`), never
/// stored, while every accepted one runs, in order, once the human decides.
#[tokio::test]
async fn a_flooded_session_refuses_turns_beyond_its_queue_and_loses_none_it_accepted() {
    const QUEUED: usize = 256;
    let mut replies = vec![
        Reply::tool_call("exec", json!({"command": "echo first >> proof.txt"})),
        Reply::text("first done"),
    ];
    replies.extend((0..QUEUED).map(|i| Reply::text(format!("answer {i}"))));
    let env = gated_env(replies).await;
    let gateway = env.serve().await;
    let first = ask(&gateway, "flood:1", "Write the proof file.").await;
    assert_eq!(first["status"], "awaiting_review", "{first}");
    let review = first["reviews"][0].as_str().unwrap().to_owned();

    let mut accepted = Vec::new();
    for i in 0..QUEUED {
        let (status, run) = api(
            &gateway,
            reqwest::Method::POST,
            "/sessions/flood:1/messages",
            Some(json!({"content": format!("turn {i}")})),
        )
        .await;
        assert_eq!(status, 202, "turn {i} waits behind the review: {run}");
        accepted.push(run["runId"].as_str().unwrap().to_owned());
    }
    let refused = http()
        .post(format!("{}/api/v1/sessions/flood:1/messages", gateway.url))
        .bearer_auth(TOKEN)
        .json(&json!({"content": "one too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "busy", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already has 256 turns waiting"),
        "{body}"
    );

    let (status, _) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/reviews/{review}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}})),
    )
    .await;
    assert_eq!(status, 200);
    let last = finished(&gateway, accepted.last().unwrap()).await;
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(
        last["content"],
        format!("answer {}", QUEUED - 1),
        "they ran in order"
    );
    let (_, session) = api(&gateway, reqwest::Method::GET, "/sessions/flood:1", None).await;
    let said: Vec<&str> = session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["message"]["role"] == "user")
        .filter_map(|m| m["message"]["content"].as_str())
        .collect();
    assert_eq!(
        said.len(),
        QUEUED + 1,
        "every accepted turn ran once: {said:?}"
    );
    assert!(
        !said.contains(&"one too many"),
        "the refused turn was not stored"
    );
}
