//! The HTTP gateway as a real `facio serve` process: OpenAI-shaped completions,
//! streamed and not, sessions by header, errors in OpenAI's shape, and a graceful
//! shutdown that lets a running turn finish.

use std::time::Duration;

use facio_tests::model::Reply;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::{Env, PATIENCE, http, request_text};

#[tokio::test]
async fn completions_run_a_turn_with_tools_in_the_requested_session() {
    let env = Env::new(vec![
        Reply::tool_call("write_file", json!({"path": "hello.txt", "content": "hi"})),
        Reply::text("Wrote hello.txt."),
        Reply::text("Yes, hello.txt exists."),
    ])
    .await;
    let gateway = env.serve().await;

    let health: Value = http()
        .get(format!("{}/health", gateway.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    let models: Value = http()
        .get(format!("{}/v1/models", gateway.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "scripted-1"),
        "{models}"
    );

    let body = json!({"model": "scripted-1", "messages": [{"role": "user", "content": "Write hello.txt"}]});
    let response = gateway.post_chat(&body, Some("team:alpha")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-session-key"], "team:alpha");
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "Wrote hello.txt."
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert!(
        completion["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{completion}"
    );
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("hello.txt")).unwrap(),
        "hi"
    );

    // The same session via the `user` field continues the conversation.
    let body = json!({"model": "scripted-1", "user": "team:alpha",
        "messages": [{"role": "user", "content": "Does it exist?"}]});
    let completion: Value = gateway.post_chat(&body, None).await.json().await.unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "Yes, hello.txt exists."
    );
    let third = &env.model.requests()[2];
    assert!(
        request_text(third).contains("Write hello.txt"),
        "history was not carried over"
    );
}

#[tokio::test]
async fn streaming_sends_openai_chunks_ending_with_usage_and_done() {
    let env = Env::new(vec![Reply::text(
        "Streaming works across several chunks of text.",
    )])
    .await;
    let gateway = env.serve().await;

    let body = json!({"model": "scripted-1", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "stream please"}]});
    let response = gateway.post_chat(&body, Some("stream:one")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    let mut frames = Vec::new();
    let mut buffer = String::new();
    let mut bytes = response.bytes_stream();
    while let Some(piece) = bytes.next().await {
        buffer.push_str(&String::from_utf8_lossy(&piece.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                frames.push(data.to_owned());
            }
        }
    }
    assert_eq!(
        frames.last().map(String::as_str),
        Some("[DONE]"),
        "{frames:?}"
    );
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"].get(0)?["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Streaming works across several chunks of text.");
    let content_chunks = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert!(
        content_chunks > 1,
        "the answer arrived in one piece, not streamed"
    );
    let finish = chunks.iter().find_map(|c| {
        c["choices"].get(0)?["finish_reason"]
            .as_str()
            .map(str::to_owned)
    });
    assert_eq!(finish.as_deref(), Some("stop"));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn bad_requests_and_provider_failures_get_openai_errors() {
    let mut env = Env::new(vec![
        Reply::error(500, "upstream exploded"),
        Reply::error(500, "upstream exploded"),
    ])
    .await;
    env.set("/agents/defaults/maxRetries", json!(1));
    let gateway = env.serve().await;
    let url = format!("{}/v1/chat/completions", gateway.url);

    let malformed = http()
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let error: Value = malformed.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().len() > 5);
    for key in ["message", "type", "param", "code"] {
        assert!(
            error["error"].get(key).is_some(),
            "error lacks {key}: {error}"
        );
    }

    let no_user = gateway
        .post_chat(
            &json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}),
            None,
        )
        .await;
    assert_eq!(no_user.status(), 400);
    let error: Value = no_user.json().await.unwrap();
    assert_eq!(error["error"]["param"], "messages");

    let bad_key = gateway
        .post_chat(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            Some("bad key with spaces"),
        )
        .await;
    assert_eq!(bad_key.status(), 400);

    let failed = gateway
        .post_chat(
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            None,
        )
        .await;
    assert_eq!(failed.status(), 502);
    let error: Value = failed.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream exploded"),
        "{error}"
    );
    assert_eq!(env.model.requests().len(), 2, "one call and one retry");
}

#[tokio::test]
async fn sigterm_lets_a_running_turn_finish_before_exiting() {
    let env = Env::new(vec![
        Reply::text("finished despite the shutdown").delayed(Duration::from_millis(1500)),
    ])
    .await;
    let gateway = env.serve().await;

    let body =
        json!({"model": "scripted-1", "messages": [{"role": "user", "content": "slow one"}]});
    let pending = {
        let url = format!("{}/v1/chat/completions", gateway.url);
        tokio::spawn(async move { http().post(url).json(&body).send().await })
    };
    env.model.wait_for_requests(1, PATIENCE).await.unwrap();
    gateway.process.terminate().await.unwrap();

    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "finished despite the shutdown"
    );
    let status = gateway.process.wait_exit(PATIENCE).await.unwrap();
    assert!(
        status.success(),
        "facio serve exited with {status}:\n{}",
        gateway.process.output()
    );
}

#[tokio::test]
async fn an_idle_session_passivates_and_comes_back_with_its_history() {
    let mut env = Env::new(vec![
        Reply::text("Remembered: 42."),
        Reply::text("It was 42."),
    ])
    .await;
    env.set("/agents/defaults/idlePassivateS", json!(1));
    let gateway = env.serve().await;
    let ask = |content: &str| json!({"model": "scripted-1", "messages": [{"role": "user", "content": content}]});

    let first = gateway
        .post_chat(&ask("The number is 42."), Some("idle:one"))
        .await;
    assert_eq!(first.status(), 200);
    assert_eq!(active_sessions(&gateway.url).await, 1);

    // The runtime stops the idle session's actor; /health reports it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while active_sessions(&gateway.url).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle session never passivated"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let second: Value = gateway
        .post_chat(&ask("What was the number?"), Some("idle:one"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["choices"][0]["message"]["content"], "It was 42.");
    let seen = request_text(&env.model.requests()[1]);
    assert!(
        seen.contains("The number is 42.") && seen.contains("Remembered: 42."),
        "history lost: {seen}"
    );
}

async fn active_sessions(url: &str) -> u64 {
    let health: Value = http()
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["activeSessions"].as_u64().unwrap()
}

#[tokio::test]
async fn the_model_a_request_names_is_the_model_called_and_named_in_the_reply() {
    let env = Env::new(vec![Reply::text("from the other model")]).await;
    let gateway = env.serve().await;
    let body = json!({"model": "scripted-2", "messages": [{"role": "user", "content": "hi"}]});
    let response = gateway.post_chat(&body, Some("gw:model")).await;
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["model"], "scripted-2", "{reply}");
    let requests = env.model.requests();
    assert_eq!(
        requests.last().unwrap().body["model"],
        "scripted-2",
        "the runtime called the model the request named, not agents.defaults.model"
    );
}
