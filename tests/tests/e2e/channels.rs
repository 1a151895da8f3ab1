//! Webhook channels: only a signed, fresh, first-time message from a sender on
//! `allowFrom` becomes a turn (tampered, stale, replayed, unsigned and unknown senders
//! are refused and store nothing but the refusal); the answer goes back signed, is
//! retried, and becomes a dead letter the management API shows when it cannot be
//! delivered; the `message` tool sends through a channel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use facio_tests::model::Reply;
use facio_tests::process::free_port;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};

use crate::hitl::{TOKEN, finished};
use crate::support::{Env, Gateway, PATIENCE, http};

const SECRET: &str = "ops-channel-secret-of-enough-length";

/// What the outbound receiver got: headers and body, in order.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver that answers 503 to its first `fail_first` requests, then 200.
async fn receiver(fail_first: usize) -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/inbox",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                seen.push((headers, body));
                if seen.len() <= fail_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/inbox", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// HMAC-SHA256 of `"<ts>.<body>"`, as the channel contract says (computed here, not
/// with Facio's code).
pub(crate) fn signature(secret: &str, ts: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_hook(
    gateway: &Gateway,
    channel: &str,
    ts: i64,
    sig: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = http()
        .post(format!("{}/hooks/{channel}", gateway.url))
        .header("content-type", "application/json")
        .header("x-facio-timestamp", ts.to_string())
        .body(body.to_owned());
    if let Some(sig) = sig {
        request = request.header("x-facio-signature", sig);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn signed(gateway: &Gateway, channel: &str, body: &Value) -> (u16, Value) {
    let text = body.to_string();
    let now = chrono_now();
    post_hook(
        gateway,
        channel,
        now,
        Some(&signature(SECRET, now, text.as_bytes())),
        &text,
    )
    .await
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    crate::support::management(gateway, TOKEN, method, path, body).await
}

/// Checks that `body` came with a valid signature by `secret` in `headers`.
fn assert_signed(headers: &HeaderMap, body: &[u8], secret: &str) {
    let ts: i64 = headers["x-facio-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers["x-facio-signature"].to_str().unwrap(),
        signature(secret, ts, body),
        "the outbound message is signed"
    );
}

/// Waits until the receiver has `n` requests.
async fn received(got: &Received, n: usize) -> Vec<(HeaderMap, Bytes)> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = got.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} requests arrived",
            now.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_webhook_channel_turns_signed_messages_into_turns_and_answers_back() {
    let (inbox, got) = receiver(1).await;
    let closed = format!("http://127.0.0.1:{}/inbox", free_port().unwrap());
    let mut env = Env::new(vec![
        Reply::text("Pong from the agent."),
        Reply::text("An answer nobody receives."),
        Reply::tool_call(
            "message",
            json!({"channel": "ops", "to": "bob", "text": "Heads up: deploy at 5."}),
        ),
        Reply::text("Sent."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/channels",
        json!({"webhooks": {
            "ops": {"secret": SECRET, "allowFrom": ["alice"], "outboundUrl": inbox,
                    "maxAttempts": 3, "retryBackoffMs": 20},
            "broken": {"secret": SECRET, "allowFrom": ["alice"], "outboundUrl": closed,
                       "maxAttempts": 2, "retryBackoffMs": 10},
        }}),
    );
    env.set(
        "/policy",
        json!({"rules": [{"action": "allow", "tool": "message"}]}),
    );
    let gateway = env.serve().await;

    let ping = json!({"id": "m1", "from": "alice", "text": "ping"});
    let body = ping.to_string();
    let now = chrono_now();
    let good = signature(SECRET, now, body.as_bytes());

    // Refused, each with its reason, and none of them reaches the model.
    let tampered = json!({"id": "m1", "from": "alice", "text": "rm -rf"}).to_string();
    let (status, why) = post_hook(&gateway, "ops", now, Some(&good), &tampered).await;
    assert_eq!(status, 401, "{why}");
    assert!(why.to_string().contains("does not match"), "{why}");
    let old = now - 301;
    let (status, why) = post_hook(
        &gateway,
        "ops",
        old,
        Some(&signature(SECRET, old, body.as_bytes())),
        &body,
    )
    .await;
    assert_eq!(status, 401, "{why}");
    assert!(why.to_string().contains("window"), "{why}");
    let (status, _) = post_hook(&gateway, "ops", now, None, &body).await;
    assert_eq!(status, 401);
    let wrong = signature("not-the-channel-secret-at-all", now, body.as_bytes());
    let (status, _) = post_hook(&gateway, "ops", now, Some(&wrong), &body).await;
    assert_eq!(status, 401);
    let mallory = json!({"id": "x1", "from": "mallory", "text": "hello"});
    let (status, why) = signed(&gateway, "ops", &mallory).await;
    assert_eq!(
        status, 403,
        "a signed message from a sender not on allowFrom: {why}"
    );
    let (status, _) = signed(&gateway, "nowhere", &ping).await;
    assert_eq!(status, 404);
    assert!(
        env.model.requests().is_empty(),
        "nothing refused reached the model"
    );
    let (_, sessions) = api(&gateway, Method::GET, "/sessions", None).await;
    assert_eq!(
        sessions["sessions"],
        json!([]),
        "nothing refused was stored: {sessions}"
    );

    // The real one is a turn; its replay is refused; a resend under its id is the same turn.
    let (status, accepted) = post_hook(&gateway, "ops", now, Some(&good), &body).await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["runId"].as_str().unwrap().to_owned();
    let (status, why) = post_hook(&gateway, "ops", now, Some(&good), &body).await;
    assert_eq!(status, 401, "a replay: {why}");
    assert!(why.to_string().contains("already received"), "{why}");
    let later = now + 1;
    let resent = signature(SECRET, later, body.as_bytes());
    let (status, again) = post_hook(&gateway, "ops", later, Some(&resent), &body).await;
    assert_eq!((status, &again["runId"]), (200, &json!(run_id)), "{again}");
    assert_eq!(finished(&gateway, &run_id).await["status"], "completed");

    // The answer went out signed, after one retry.
    let got_now = received(&got, 2).await;
    let (headers, sent) = &got_now[1];
    assert_signed(headers, sent, SECRET);
    let sent: Value = serde_json::from_slice(sent).unwrap();
    assert_eq!(
        (&sent["to"], &sent["inReplyTo"], &sent["text"]),
        (
            &json!("alice"),
            &json!("m1"),
            &json!("Pong from the agent.")
        ),
        "{sent}"
    );

    // The record names the sender, the refusal and the turn's origin.
    let (_, audit) = api(&gateway, Method::GET, "/audit?type=channel_message", None).await;
    let events = audit["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["data"]["from"] == "mallory" && e["data"]["accepted"] == false),
        "{audit}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["data"]["from"] == "alice" && e["data"]["runId"] == json!(run_id)),
        "{audit}"
    );
    let (_, started) = api(
        &gateway,
        Method::GET,
        &format!("/audit?run={run_id}&type=turn_started"),
        None,
    )
    .await;
    assert_eq!(
        started["events"][0]["data"]["origin"], "channel",
        "{started}"
    );

    // A channel whose receiver is gone keeps the answer as a dead letter.
    let (status, lost) = signed(
        &gateway,
        "broken",
        &json!({"id": "m2", "from": "alice", "text": "hi"}),
    )
    .await;
    assert_eq!(status, 202, "{lost}");
    finished(&gateway, lost["runId"].as_str().unwrap()).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let letters = loop {
        let (status, letters) =
            api(&gateway, Method::GET, "/channels/broken/dead-letters", None).await;
        assert_eq!(status, 200, "{letters}");
        if letters["deadLetters"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
        {
            break letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter: {letters}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let letter = &letters["deadLetters"][0];
    assert_eq!(
        (&letter["text"], &letter["attempts"], &letter["to"]),
        (
            &json!("An answer nobody receives."),
            &json!(2),
            &json!("alice")
        ),
        "{letters}"
    );
    let (_, channels) = api(&gateway, Method::GET, "/channels", None).await;
    let list = channels["channels"].as_array().unwrap();
    let broken = list.iter().find(|c| c["name"] == "broken").unwrap();
    assert_eq!(broken["deadLetters"], 1, "{channels}");
    assert!(
        !channels.to_string().contains(SECRET),
        "the secret is never shown"
    );

    // The agent's `message` tool sends through the channel.
    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/ops:notify/messages?wait=30",
        Some(json!({"content": "Tell bob about the deploy."})),
    )
    .await;
    assert_eq!(
        (status, &run["status"]),
        (200, &json!("completed")),
        "{run}"
    );
    let got_now = received(&got, 3).await;
    let note: Value = serde_json::from_slice(&got_now[2].1).unwrap();
    assert_eq!(
        (&note["to"], &note["text"]),
        (&json!("bob"), &json!("Heads up: deploy at 5.")),
        "{note}"
    );
}

#[tokio::test]
async fn placet_s_webhook_brings_user_messages_as_turns_and_review_answers_as_decisions() {
    let placet = facio_tests::placet::PlacetStandIn::start("hp_test_key")
        .await
        .unwrap();
    let mut env = Env::new(vec![
        Reply::text("Hello from Facio, in Placet."),
        Reply::tool_call("exec", json!({"command": "echo via-webhook > pw.txt"})),
        Reply::text("Written."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/channels",
        json!({"placet": {"instanceUrl": placet.base_url(), "apiKey": "hp_test_key",
                          "channelId": "ch_ops", "managementUrl": "http://facio.internal:8900"}}),
    );
    let gateway = env.serve().await;

    // Facio registered its webhook as Placet's setWebhook takes it: `url`, and the
    // header Placet's calls carry to authenticate.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while placet.registrations().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let registration = &placet.registrations()[0];
    assert_eq!(
        registration["url"], "http://facio.internal:8900/api/v1/placet/webhook",
        "{registration}"
    );
    let authorization = registration["headers"]["Authorization"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = |body: Value, auth: Option<String>| {
        let mut request = http()
            .post(format!("{}/api/v1/placet/webhook", gateway.url))
            .json(&body);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let said = json!({"event": "message:created", "channelId": "ch_ops",
        "message": {"id": "pm_1", "channelId": "ch_ops", "senderType": "user",
                    "senderId": "user_7", "text": "hi facio", "review": null}});

    // Without the registered header nothing is taken.
    let (status, _) = hook(said.clone(), None).await;
    assert_eq!(status, 401);
    let (status, took) = hook(said.clone(), Some(authorization.clone())).await;
    assert_eq!((status, &took["outcome"]), (202, &json!("turn")), "{took}");
    let (status, again) = hook(said.clone(), Some(authorization.clone())).await;
    assert_eq!(
        (status, &again["outcome"], &again["runId"]),
        (202, &json!("duplicate"), &took["runId"]),
        "a redelivered message is one turn: {again}"
    );
    let own = json!({"event": "message:created", "channelId": "ch_ops",
        "message": {"id": "pm_2", "senderType": "agent", "text": "an echo of ours"}});
    let (_, ignored) = hook(own, Some(authorization.clone())).await;
    assert_eq!(ignored["outcome"], "ignored", "{ignored}");
    // The answer is posted back to Placet.
    let posted = placet.wait_for_messages(1, PATIENCE).await.unwrap();
    assert_eq!(
        posted[0]["text"], "Hello from Facio, in Placet.",
        "{posted:?}"
    );
    assert_eq!(env.model.requests().len(), 1, "one turn for the message");

    // A gated call's review goes to Placet; Placet's review:responded decides it.
    let write = json!({"event": "message:created", "channelId": "ch_ops",
        "message": {"id": "pm_3", "senderType": "user", "senderId": "user_7",
                    "text": "write pw.txt"}});
    let (_, took) = hook(write, Some(authorization.clone())).await;
    let run_id = took["runId"].as_str().unwrap().to_owned();
    let posted = placet.wait_for_messages(2, PATIENCE).await.unwrap();
    let card = posted
        .iter()
        .find(|m| !m["review"].is_null())
        .unwrap_or_else(|| panic!("the review went to Placet: {posted:?}"));
    let message_id = card["id"].as_str().unwrap().to_owned();
    assert!(!env.workspace().join("pw.txt").exists());
    let answered = json!({"event": "review:responded", "channelId": "ch_ops",
        "message_id": message_id, "review_type": "approval",
        "response": {"selectedOption": "approve"}, "responded_at": "2026-12-04T12:00:00Z"});
    let (status, decided) = hook(answered.clone(), Some(authorization.clone())).await;
    assert_eq!(
        (status, &decided["outcome"]),
        (202, &json!("decision")),
        "{decided}"
    );
    let (_, twice) = hook(answered, Some(authorization.clone())).await;
    assert_eq!(twice["outcome"], "duplicate", "{twice}");
    assert_eq!(finished(&gateway, &run_id).await["status"], "completed");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("pw.txt"))
            .unwrap()
            .trim(),
        "via-webhook"
    );
    let (_, audit) = api(&gateway, Method::GET, "/audit?type=review_decided", None).await;
    assert_eq!(audit["events"][0]["actor"], "placet", "{audit}");
}

#[tokio::test]
async fn a_tenant_adds_its_own_webhook_channel_with_its_secret_in_the_vault() {
    let (inbox, got) = receiver(0).await;
    let mut env = Env::new(vec![Reply::text("Hello, team.")]).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/channels",
        json!({"webhooks": {"ops": {"secret": SECRET, "allowFrom": ["alice"]}}}),
    );
    let gateway = env.serve().await;
    let team_secret = "team-secret-kept-in-the-vault";
    let (status, _) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "TEAM_SECRET", "value": team_secret})),
    )
    .await;
    assert_eq!(status, 201);

    // A raw secret and a name the config uses are refused.
    let (status, bad) = api(
        &gateway,
        Method::PUT,
        "/channels/team",
        Some(json!({"type": "webhook", "secret": team_secret, "allowFrom": ["alice"]})),
    )
    .await;
    assert_eq!(
        (status, &bad["error"]["param"]),
        (400, &json!("secret")),
        "{bad}"
    );
    let (status, _) = api(
        &gateway,
        Method::PUT,
        "/channels/ops",
        Some(json!({"type": "webhook", "secret": "${credentials.TEAM_SECRET}"})),
    )
    .await;
    assert_eq!(status, 409);

    let (status, team) = api(
        &gateway,
        Method::PUT,
        "/channels/team",
        Some(
            json!({"type": "webhook", "secret": "${credentials.TEAM_SECRET}",
                    "allowFrom": ["alice"], "outboundUrl": inbox, "retryBackoffMs": 10}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(
        (&team["source"], &team["inboundPath"]),
        (&json!("tenant"), &json!("/hooks/default/team")),
        "{team}"
    );
    assert!(!team.to_string().contains(team_secret));

    // Signed with the vault's value, the message is a turn; the answer goes out.
    let body = json!({"id": "t1", "from": "alice", "text": "hi team"}).to_string();
    let now = chrono_now();
    let (status, took) = post_hook(
        &gateway,
        "default/team",
        now,
        Some(&signature(team_secret, now, body.as_bytes())),
        &body,
    )
    .await;
    assert_eq!(status, 202, "{took}");
    let sent = received(&got, 1).await;
    let (headers, answer) = &sent[0];
    assert_signed(headers, answer, team_secret);
    assert_eq!(
        serde_json::from_slice::<Value>(answer).unwrap()["text"],
        "Hello, team."
    );
    // The config's channel is not reachable under the tenant's path, and a removed
    // channel takes nothing.
    let (status, _) = post_hook(&gateway, "default/ops", now, Some("sha256=00"), &body).await;
    assert_eq!(status, 404);
    let (status, _) = api(&gateway, Method::DELETE, "/channels/team", None).await;
    assert_eq!(status, 204);
    let later = now + 1;
    let (status, _) = post_hook(
        &gateway,
        "default/team",
        later,
        Some(&signature(team_secret, later, body.as_bytes())),
        &body,
    )
    .await;
    assert_eq!(status, 404);
    let (_, changes) = api(&gateway, Method::GET, "/audit?type=channel_changed", None).await;
    assert_eq!(
        changes["events"].as_array().map(Vec::len),
        Some(2),
        "{changes}"
    );
    assert!(!changes.to_string().contains(team_secret));
}
