//! An acknowledged turn is never lost: a node killed with SIGKILL while turns stream
//! in still knows, after a restart, every run it answered 202 for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use facio_tests::model::Reply;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

use crate::postgres::Backend;
use crate::support::{Env, PATIENCE, http};

const TOKEN: &str = "mgmt-durability-token";
/// Messages fired at the node, each to its own session.
const MESSAGES: usize = 300;
/// At most this many requests in flight at once.
const IN_FLIGHT: usize = 64;
/// The node is killed once this many have been acknowledged.
const KILL_AFTER: usize = 100;

#[tokio::test]
async fn every_acknowledged_run_survives_kill_9_while_turns_stream_in() {
    acknowledged_runs_survive_kill_9(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_acknowledged_run_survives_kill_9_on_postgres() {
    acknowledged_runs_survive_kill_9(Backend::Postgres).await;
}

async fn acknowledged_runs_survive_kill_9(backend: Backend) {
    // Slow answers keep turns running when the node dies; the replies are all alike,
    // so it does not matter which turn takes which.
    let replies = (0..MESSAGES * 2)
        .map(|_| Reply::text("ok").delayed(Duration::from_millis(300)))
        .collect();
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/limits",
        json!({"tenantRequestsPerMinute": 100_000_000, "tokenRequestsPerMinute": 100_000_000}),
    );
    env.set("/logging", json!({"level": "warn"}));
    let Ok(database) = backend.apply(&mut env).await else {
        return;
    };
    let first = env.serve().await;

    let client = http();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut senders = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let (client, url) = (client.clone(), first.url.clone());
        let (acknowledged, count, enough, permits) = (
            acknowledged.clone(),
            count.clone(),
            enough.clone(),
            permits.clone(),
        );
        senders.push(tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let sent = client
                .post(format!("{url}/api/v1/sessions/durable:{i}/messages"))
                .bearer_auth(TOKEN)
                .json(&json!({"content": format!("message {i}")}))
                .send()
                .await;
            // A request cut off by the kill was never acknowledged: it may be lost.
            let Ok(response) = sent else { return };
            if response.status().as_u16() != 202 {
                return;
            }
            let Ok(body) = response.json::<Value>().await else {
                return;
            };
            if let Some(run_id) = body["runId"].as_str() {
                acknowledged.lock().await.push(run_id.to_owned());
                if count.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                    enough.notify_one();
                }
            }
        }));
    }
    tokio::time::timeout(PATIENCE, enough.notified())
        .await
        .expect("enough messages were acknowledged before the kill");
    first.process.kill().await.expect("kill -9 the node");
    for sender in senders {
        sender.await.expect("a sender task ended cleanly");
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged.len() >= KILL_AFTER, "{}", acknowledged.len());
    drop(first);

    let second = env.serve().await;
    // Every acknowledged turn is carried through after the restart: one cut off by the
    // kill (at the model, its calls not started) goes on from its last recorded step,
    // one queued runs, one that ended keeps its status.
    let mut lost = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    for run_id in &acknowledged {
        let run = loop {
            let response = client
                .get(format!("{}/api/v1/runs/{run_id}", second.url))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("GET the run");
            let status = response.status().as_u16();
            if status != 200 {
                break Err(format!("{run_id}: {status}"));
            }
            let run: Value = response.json().await.expect("the run as JSON");
            let going = matches!(run["status"].as_str(), Some("running" | "queued"));
            if !going || tokio::time::Instant::now() >= deadline {
                break Ok(run);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        match run {
            Ok(run) => assert_eq!(run["status"], "completed", "{run}"),
            Err(gone) => lost.push(gone),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged runs are gone after kill -9: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(10)]
    );
    drop(second);
    if let Some(database) = database {
        database.drop_it().await;
    }
}

#[tokio::test]
async fn a_message_to_a_session_waiting_for_a_human_is_answered_at_once() {
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo gated"})),
        Reply::text("done"),
        Reply::text("second answer"),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;
    let post = |content: &'static str, wait: &'static str| {
        let url = format!("{}/api/v1/sessions/dur:waiting/messages{wait}", gateway.url);
        async move {
            http()
                .post(url)
                .bearer_auth(TOKEN)
                .json(&json!({"content": content}))
                .send()
                .await
                .unwrap()
        }
    };
    let first: Value = post("run the gated command", "?wait=20")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["status"], "awaiting_review", "{first}");
    // The session is waiting for a human; another message queues behind it and its
    // caller is answered now, not when the review closes.
    let second = tokio::time::timeout(PATIENCE, post("and then this", ""))
        .await
        .expect("a queued message is acknowledged without waiting for the review");
    assert_eq!(second.status(), 202);
    let queued: Value = second.json().await.unwrap();
    assert!(queued["runId"].is_string(), "{queued}");
}

#[tokio::test]
async fn a_queued_message_survives_kill_9_and_runs_after_the_review() {
    queued_message_survives_kill_9(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_queued_message_survives_kill_9_on_postgres() {
    queued_message_survives_kill_9(Backend::Postgres).await;
}

/// The attack: a message acknowledged while its session waits for a human, then
/// kill -9 before it ever started. It must still be there after the restart, run
/// once the review is decided, and reach the model as the user wrote it.
async fn queued_message_survives_kill_9(backend: Backend) {
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo gated"})),
        Reply::text("done"),
        Reply::text("second answer"),
    ])
    .await;
    env.set("/api/managementToken", json!(crate::hitl::TOKEN));
    let Ok(database) = backend.apply(&mut env).await else {
        return;
    };
    let first_node = env.serve().await;
    let post = |url: String, content: &'static str, wait: &'static str| async move {
        http()
            .post(format!("{url}/api/v1/sessions/dur:queued/messages{wait}"))
            .bearer_auth(crate::hitl::TOKEN)
            .json(&json!({"content": content}))
            .send()
            .await
            .unwrap()
    };
    let first: Value = post(first_node.url.clone(), "run the gated command", "?wait=20")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["status"], "awaiting_review", "{first}");
    let second = post(first_node.url.clone(), "and then this", "").await;
    assert_eq!(second.status(), 202);
    let queued: Value = second.json().await.unwrap();
    let queued_id = queued["runId"].as_str().unwrap().to_owned();
    first_node.process.kill().await.expect("kill -9 the node");
    drop(first_node);

    let node = env.serve().await;
    let get = |path: String| {
        let url = format!("{}/api/v1{path}", node.url);
        async move {
            let response = http()
                .get(url)
                .bearer_auth(crate::hitl::TOKEN)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, run) = get(format!("/runs/{queued_id}")).await;
    assert_eq!(
        status, 200,
        "the acknowledged run is gone after kill -9: {run}"
    );
    assert_eq!(run["status"], "queued", "{run}");
    let (_, pending) = get("/reviews?status=pending".to_owned()).await;
    let review = pending["reviews"][0]["id"].as_str().unwrap().to_owned();
    let decided = http()
        .post(format!("{}/api/v1/reviews/{review}/decide", node.url))
        .bearer_auth(crate::hitl::TOKEN)
        .json(&json!({"response": {"selectedOption": "approve"}, "reviewer": "erin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status().as_u16(), 200);
    let done = crate::hitl::finished(&node, &queued_id).await;
    assert_eq!(
        (done["status"].as_str(), done["content"].as_str()),
        (Some("completed"), Some("second answer")),
        "{done}"
    );
    let asked = env.model.requests();
    let last = asked.last().unwrap();
    assert!(
        last.body.to_string().contains("and then this"),
        "the queued message reached the model"
    );
    drop(node);
    if let Some(database) = database {
        database.drop_it().await;
    }
}
