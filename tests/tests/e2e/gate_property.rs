//! A property of the gate, checked over random plays: for random model steps (one to
//! three calls, ids repeated, reused or empty, harmless questions mixed with commands)
//! and random human moves (approve, reject, stop, kill -9 and restart), every `exec`
//! that ran maps to exactly one approving decision recorded in the audit for that
//! exact call (same call id, same tool, same arguments), and every effect on disk is
//! one the record shows.

use std::collections::{BTreeMap, HashSet};

use facio_tests::model::Reply;
use reqwest::Method;
use serde_json::{Value, json};

use crate::hostile::XorShift;
use crate::support::{Env, Gateway};

const TOKEN: &str = "gate-property-token";
const STEPS: usize = 6;

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::support::management(gateway, TOKEN, method, path, body).await
}

/// The model's script: each step asks for some calls, then answers in text.
fn script(seed: u64, rng: &mut XorShift) -> Vec<Reply> {
    let ids = ["call_0", "dup", ""];
    let mut replies = Vec::new();
    for step in 0..STEPS {
        let count = 1 + (rng.next() % 3) as usize;
        let calls = (0..count)
            .map(|i| {
                let id = ids[(rng.next() % 3) as usize].to_owned();
                if rng.next().is_multiple_of(4) {
                    let title = format!("May I go on with step {step}?");
                    let description = "Nothing runs on this answer.";
                    let args = json!({"title": title, "description": description});
                    (id, "ask_approval".to_owned(), args)
                } else {
                    let command = format!("echo T{seed}_{step}_{i} >> log.txt");
                    (id, "exec".to_owned(), json!({"command": command}))
                }
            })
            .collect();
        replies.push(Reply::ToolCallsWithIds(calls));
        replies.push(Reply::text(format!("step {step} done")));
    }
    replies
}

/// Follows the run until it waits on a review not yet answered, or ends.
async fn next_state(gateway: &Gateway, run_id: &str, answered: &HashSet<String>) -> Value {
    let wait = async {
        loop {
            let state = crate::support::follow_run(gateway, TOKEN, run_id, |run| {
                let fresh = run["reviews"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|r| !answered.contains(r));
                match run["status"].as_str() {
                    Some("running") => None,
                    Some("awaiting_review") if !fresh => None,
                    _ => Some(run.clone()),
                }
            })
            .await;
            if let Some(state) = state {
                return state;
            }
        }
    };
    tokio::time::timeout(crate::support::PATIENCE, wait)
        .await
        .expect("the run moved on in time")
}

/// Plays one seed; returns the human moves made and how many commands ran.
async fn play(seed: u64) -> (Vec<u64>, usize) {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let replies = script(seed, &mut rng);
    let total = replies.len();
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    let mut gateway = env.serve().await;
    let session = format!("prop:s{seed}");
    let mut answered: HashSet<String> = HashSet::new();
    let mut moves = Vec::new();
    for _turn in 0..STEPS * 2 {
        if env.model.requests().len() >= total {
            break;
        }
        let (status, run) = api(
            &gateway,
            Method::POST,
            &format!("/sessions/{session}/messages?wait=20"),
            Some(json!({"content": "Go on."})),
        )
        .await;
        assert_eq!(status, 200, "{run}");
        let run_id = run["runId"].as_str().unwrap().to_owned();
        loop {
            let state = next_state(&gateway, &run_id, &answered).await;
            if state["status"] != "awaiting_review" {
                break;
            }
            let review = state["reviews"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .find(|r| !answered.contains(*r))
                .unwrap()
                .to_owned();
            let roll = (rng.next() >> 32) % 10;
            moves.push(roll);
            match roll {
                0..=7 => {
                    let option = if roll <= 4 { "approve" } else { "reject" };
                    let (status, body) = api(
                        &gateway,
                        Method::POST,
                        &format!("/reviews/{review}/decide"),
                        Some(json!({"response": {"selectedOption": option}})),
                    )
                    .await;
                    assert_eq!(status, 200, "{body}");
                    answered.insert(review);
                }
                8 => {
                    let (status, body) = api(
                        &gateway,
                        Method::POST,
                        "/commands/stop",
                        Some(json!({"sessionKey": session})),
                    )
                    .await;
                    assert_eq!(status, 200, "{body}");
                    answered.insert(review);
                }
                _ => {
                    gateway.process.kill().await.unwrap();
                    gateway = env.serve().await;
                }
            }
        }
    }
    check(&env, &gateway, seed, &moves).await
}

/// The invariant, read from the audit trail and the workspace.
async fn check(env: &Env, gateway: &Gateway, seed: u64, moves: &[u64]) -> (Vec<u64>, usize) {
    let (_, audit) = api(gateway, Method::GET, "/audit?limit=5000", None).await;
    let events = audit["events"].as_array().unwrap();
    let approvals: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "review_decided")
        .filter(|e| e["data"]["response"]["selectedOption"] == "approve")
        .collect();
    let mut ran_per_command: BTreeMap<String, usize> = BTreeMap::new();
    for event in events.iter().filter(|e| {
        e["kind"] == "tool_call"
            && e["data"]["tool"] == "exec"
            && matches!(e["data"]["status"].as_str(), Some("succeeded" | "failed"))
    }) {
        let call = event["data"]["callId"].as_str().unwrap();
        let arguments: Value =
            serde_json::from_str(event["data"]["arguments"].as_str().unwrap()).unwrap();
        let matching: Vec<_> = approvals
            .iter()
            .filter(|a| a["data"]["callId"] == call)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "seed {seed} moves {moves:?}: exec {call} {arguments} ran with {} approvals",
            matching.len()
        );
        assert_eq!(matching[0]["data"]["tool"], "exec", "seed {seed}");
        assert_eq!(matching[0]["data"]["arguments"], arguments, "seed {seed}");
        let command = arguments["command"].as_str().unwrap().to_owned();
        *ran_per_command.entry(command).or_default() += 1;
    }
    let log = std::fs::read_to_string(env.workspace().join("log.txt")).unwrap_or_default();
    let mut on_disk: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.lines() {
        *on_disk
            .entry(format!("echo {line} >> log.txt"))
            .or_default() += 1;
    }
    assert_eq!(
        on_disk, ran_per_command,
        "seed {seed} moves {moves:?}: every effect is on record, once per recorded run"
    );
    (moves.to_vec(), ran_per_command.values().sum())
}

#[tokio::test]
async fn every_executed_gated_call_has_exactly_one_approval_for_that_exact_call() {
    let (mut moves, mut ran) = (Vec::new(), 0);
    for seed in [3, 11, 42, 1234] {
        let (made, executed) = play(seed).await;
        moves.extend(made);
        ran += executed;
    }
    // The plays must have exercised every kind of move, or they prove little.
    assert!(ran > 0, "no command ran in any play");
    for (name, kind) in [
        ("approve", 0..=4),
        ("reject", 5..=7),
        ("stop", 8..=8),
        ("restart", 9..=9),
    ] {
        assert!(
            moves.iter().any(|m| kind.contains(m)),
            "no {name} among the moves {moves:?}"
        );
    }
}
