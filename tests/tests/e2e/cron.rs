//! Scheduled jobs: a job fires each instant of its schedule once, as a `cron` turn
//! of its session; a schedule that cannot fire is refused with its reason; a paused
//! job does not fire; run-now gives a turn at once; the policy's `skipCron` lets
//! scheduled turns run unreviewed unless their job requires approval.

use std::collections::BTreeSet;
use std::time::Duration;

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::hitl::{TOKEN, finished};
use crate::support::{Env, Gateway, PATIENCE};

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::support::management(gateway, TOKEN, method, path, body).await
}

/// The `turn_queued` events of `session`, oldest first.
async fn queued(gateway: &Gateway, session: &str) -> Vec<Value> {
    let (status, audit) = api(
        gateway,
        Method::GET,
        &format!("/audit?type=turn_queued&session={session}&limit=500"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let mut events = audit["events"].as_array().cloned().unwrap_or_default();
    events.sort_by_key(|e| e["seq"].as_i64());
    events
}

/// Waits until `session` was given `n` turns and all of them completed; returns the
/// runs' views.
async fn completed_runs(gateway: &Gateway, session: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let events = queued(gateway, session).await;
        let mut runs = Vec::new();
        for event in &events {
            let run_id = event["runId"].as_str().unwrap();
            let (status, run) = api(gateway, Method::GET, &format!("/runs/{run_id}"), None).await;
            assert_eq!(status, 200, "{run}");
            runs.push(run);
        }
        let done = runs.iter().filter(|r| r["status"] == "completed").count();
        if events.len() >= n && done == events.len() {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{session} has {done} completed runs of {}, not {n}: {runs:?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the pending review of `run_id`.
async fn pending_review(gateway: &Gateway, run_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, pending) = api(gateway, Method::GET, "/reviews?status=pending", None).await;
        if let Some(review) = pending["reviews"]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["runId"] == run_id))
        {
            return review.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no review of {run_id}: {pending}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_scheduled_job_fires_each_instant_once_as_a_cron_turn() {
    let replies = (0..40)
        .map(|i| Reply::text(format!("report {i}")))
        .collect();
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;

    // A schedule that cannot fire is refused, naming what is wrong; nothing is stored.
    for (body, says) in [
        (
            json!({"schedule": {"cron": "every tuesday"}, "message": "x"}),
            "schedule.cron",
        ),
        (
            json!({"schedule": {"at": "2001-01-01T00:00:00Z"}, "message": "x"}),
            "not in the future",
        ),
        (
            json!({"schedule": {"everyS": 0}, "message": "x"}),
            "schedule.everyS",
        ),
        (
            json!({"schedule": {"everyS": 5}, "message": "   "}),
            "message",
        ),
    ] {
        let (status, why) = api(&gateway, Method::POST, "/cron", Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {why}");
        assert!(why.to_string().contains(says), "{body}: {why}");
    }
    let (status, why) = api(
        &gateway,
        Method::POST,
        "/cron",
        Some(json!({"schedule": {"everyS": 5}, "message": "x", "shell": "rm"})),
    )
    .await;
    assert_eq!(status, 422, "an unknown field: {why}");
    assert!(why.to_string().contains("unknown field `shell`"), "{why}");
    let (_, none) = api(&gateway, Method::GET, "/cron", None).await;
    assert_eq!(none["jobs"], json!([]), "{none}");

    // Every second, for a while.
    let (status, job) = api(
        &gateway,
        Method::POST,
        "/cron",
        Some(
            json!({"name": "heartbeat", "schedule": {"everyS": 1}, "message": "Check the queue."}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let session = job["sessionKey"].as_str().unwrap().to_owned();
    assert_eq!(session, format!("cron:{id}"));
    assert!(job["nextFireAt"].is_string(), "{job}");
    completed_runs(&gateway, &session, 3).await;

    // Paused, it fires no more; what it fired is on record once per instant.
    let (status, paused) = api(&gateway, Method::POST, &format!("/cron/{id}/pause"), None).await;
    assert_eq!((status, &paused["paused"]), (200, &json!(true)), "{paused}");
    assert_eq!(paused["nextFireAt"], Value::Null, "{paused}");
    // Let a fire already given finish, then see that no new one comes.
    let settled = {
        let mut last = usize::MAX;
        loop {
            let now = queued(&gateway, &session).await.len();
            if now == last {
                break now;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let events = queued(&gateway, &session).await;
    assert_eq!(events.len(), settled, "a paused job fired");
    let instants: BTreeSet<String> = events
        .iter()
        .map(|e| e["data"]["scheduledFor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        instants.len(),
        events.len(),
        "an instant fired twice: {events:?}"
    );
    let runs: BTreeSet<&str> = events
        .iter()
        .map(|e| e["runId"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), events.len());
    for event in &events {
        assert_eq!(event["data"]["origin"], "cron", "{event}");
        assert_eq!(event["data"]["cronJob"], json!(id), "{event}");
        assert_eq!(event["actor"], json!(format!("cron:{id}")), "{event}");
    }
    let runs = completed_runs(&gateway, &session, events.len()).await;
    assert_eq!(runs.len(), events.len(), "one run per fire: {runs:?}");
    assert_eq!(
        env.model.requests().len(),
        events.len(),
        "one model call per fire, none doubled"
    );
    let (_, started) = api(
        &gateway,
        Method::GET,
        &format!("/audit?type=turn_started&session={session}&limit=1"),
        None,
    )
    .await;
    assert_eq!(started["events"][0]["data"]["origin"], "cron", "{started}");

    // Run now, paused or not: one turn, recorded as the caller's.
    let (status, ran) = api(&gateway, Method::POST, &format!("/cron/{id}/run-now"), None).await;
    assert_eq!(status, 202, "{ran}");
    let run_id = ran["runId"].as_str().unwrap().to_owned();
    assert_eq!(finished(&gateway, &run_id).await["status"], "completed");
    let last = queued(&gateway, &session).await.pop().unwrap();
    assert_eq!(
        (&last["runId"], &last["data"]["runNow"]),
        (&json!(run_id), &json!(true)),
        "{last}"
    );

    // The job's changes are on record; a removed job is gone.
    let (status, shown) = api(&gateway, Method::GET, &format!("/cron/{id}"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert!(shown["lastFire"]["runId"].is_string(), "{shown}");
    let (status, _) = api(&gateway, Method::DELETE, &format!("/cron/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = api(&gateway, Method::GET, &format!("/cron/{id}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = api(&gateway, Method::GET, "/cron/not-a-job-id", None).await;
    assert_eq!(status, 404);
    let (_, changes) = api(&gateway, Method::GET, "/audit?type=cron_job_changed", None).await;
    let actions: Vec<&str> = changes["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["action"].as_str().unwrap())
        .collect();
    let mut sorted = actions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["added", "paused", "removed"], "{changes}");
}

#[tokio::test]
async fn skip_cron_lets_scheduled_turns_run_unreviewed_unless_their_job_requires_approval() {
    let exec = || Reply::tool_call("exec", json!({"command": "echo scheduled"}));
    let mut env = Env::new(vec![
        exec(),
        Reply::text("ran unreviewed"),
        exec(),
        Reply::text("ran after a human said yes"),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/policy", json!({"skipCron": true}));
    let gateway = env.serve().await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(6)).to_rfc3339();

    let (status, job) = api(
        &gateway,
        Method::POST,
        "/cron",
        Some(json!({"schedule": {"at": at}, "message": "Clean up."})),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let (_, ran) = api(
        &gateway,
        Method::POST,
        &format!("/cron/{}/run-now", job["id"].as_str().unwrap()),
        None,
    )
    .await;
    let run = finished(&gateway, ran["runId"].as_str().unwrap()).await;
    assert_eq!(run["status"], "completed", "{run}");
    let (_, reviews) = api(&gateway, Method::GET, "/reviews", None).await;
    assert_eq!(
        reviews["reviews"],
        json!([]),
        "skipCron: no review: {reviews}"
    );

    let (status, reviewed) = api(
        &gateway,
        Method::POST,
        "/cron",
        Some(json!({"schedule": {"at": at}, "message": "Clean up carefully.", "requireApproval": true})),
    )
    .await;
    assert_eq!(status, 201, "{reviewed}");
    let (_, ran) = api(
        &gateway,
        Method::POST,
        &format!("/cron/{}/run-now", reviewed["id"].as_str().unwrap()),
        None,
    )
    .await;
    let run_id = ran["runId"].as_str().unwrap().to_owned();
    let review = pending_review(&gateway, &run_id).await;
    assert_eq!(review["origin"], "cron_reviewed", "{review}");
    let (status, decided) = api(
        &gateway,
        Method::POST,
        &format!("/reviews/{}/decide", review["id"].as_str().unwrap()),
        Some(json!({"response": {"selectedOption": "approve"}, "reviewer": "quinn"})),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    let run = finished(&gateway, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(env.model.requests().len(), 4);
}

/// A model allowed to schedule jobs cannot schedule its way past the gate: it cannot
/// ask for a job without approval, and the calls of a job it scheduled go to a human
/// even though the policy lets scheduled turns skip the gate.
#[tokio::test]
async fn a_job_the_agent_schedules_never_skips_the_gate() {
    let mut env = Env::new(vec![
        Reply::tool_call(
            "cron",
            json!({"action": "add", "schedule": {"everyS": 3600}, "message": "Run the cleanup.",
                   "requireApproval": false}),
        ),
        Reply::tool_call(
            "cron",
            json!({"action": "add", "name": "cleanup", "schedule": {"everyS": 3600},
                   "message": "Run the cleanup."}),
        ),
        Reply::text("Scheduled."),
        Reply::tool_call("exec", json!({"command": "echo cleanup"})),
        Reply::text("Cleaned up."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/policy",
        json!({"skipCron": true, "rules": [{"action": "allow", "tool": "cron"}]}),
    );
    let gateway = env.serve().await;
    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/ops/messages?wait=20",
        Some(json!({"content": "Schedule the hourly cleanup."})),
    )
    .await;
    assert_eq!(
        (status, &run["status"]),
        (200, &json!("completed")),
        "{run}"
    );
    let requests = env.model.requests();
    let refused = requests[1].messages().last().cloned().unwrap();
    assert!(
        refused["content"]
            .as_str()
            .is_some_and(|c| c.contains("requireApproval")),
        "asking for a job without approval is refused: {refused}"
    );
    let (_, jobs) = api(&gateway, Method::GET, "/cron", None).await;
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(
        (&job["requireApproval"], &job["createdBy"]),
        (&json!(true), &json!("agent")),
        "{job}"
    );
    let (_, changes) = api(&gateway, Method::GET, "/audit?type=cron_job_changed", None).await;
    assert_eq!(changes["events"][0]["data"]["surface"], "cron", "{changes}");

    let (_, ran) = api(
        &gateway,
        Method::POST,
        &format!("/cron/{}/run-now", job["id"].as_str().unwrap()),
        None,
    )
    .await;
    let run_id = ran["runId"].as_str().unwrap().to_owned();
    let review = pending_review(&gateway, &run_id).await;
    assert_eq!(
        (&review["tool"], &review["origin"]),
        (&json!("exec"), &json!("cron_reviewed")),
        "{review}"
    );
    let (status, _) = api(
        &gateway,
        Method::POST,
        &format!("/reviews/{}/decide", review["id"].as_str().unwrap()),
        Some(json!({"response": {"selectedOption": "reject"}, "reviewer": "quinn"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(finished(&gateway, &run_id).await["status"], "completed");
}
