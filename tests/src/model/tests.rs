use std::time::Duration;

use serde_json::{Value, json};

use super::{Reply, ScriptedModel};

async fn post(model: &ScriptedModel, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", model.base_url()))
        .header("authorization", "Bearer sk-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn ask(stream: bool) -> Value {
    json!({"model": "scripted-1", "messages": [{"role": "user", "content": "hi"}], "stream": stream,
           "stream_options": {"include_usage": true}})
}

/// Reassembles an SSE stream into (text, tool name, tool arguments, finish, usage seen).
async fn read_stream(response: reqwest::Response) -> (String, String, String, String, bool) {
    let text = response.text().await.unwrap();
    let (mut content, mut name, mut args, mut finish, mut usage) = (
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        false,
    );
    let mut done = false;
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(line).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        usage |= chunk["usage"]["total_tokens"].as_u64().is_some();
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        content += choice["delta"]["content"].as_str().unwrap_or_default();
        if let Some(call) = choice["delta"]["tool_calls"].get(0) {
            name += call["function"]["name"].as_str().unwrap_or_default();
            args += call["function"]["arguments"].as_str().unwrap_or_default();
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = f.to_owned();
        }
    }
    assert!(done, "the stream ended with [DONE]");
    (content, name, args, finish, usage)
}

#[tokio::test]
async fn answers_in_script_order_in_both_wire_shapes_and_records_requests() {
    let model = ScriptedModel::start(vec![
        Reply::text("hello there"),
        Reply::tool_call("read_file", json!({"path": "a.txt"})),
        Reply::text("streamed words arrive in pieces"),
        Reply::tool_call("exec", json!({"command": "ls -la"})),
    ])
    .await
    .unwrap();

    let first: Value = post(&model, ask(false)).await.json().await.unwrap();
    assert_eq!(first["choices"][0]["message"]["content"], "hello there");
    assert_eq!(first["choices"][0]["finish_reason"], "stop");
    assert!(first["usage"]["total_tokens"].as_u64().unwrap() >= 2);

    let second: Value = post(&model, ask(false)).await.json().await.unwrap();
    let call = &second["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "read_file");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"path": "a.txt"})
    );
    assert_eq!(second["choices"][0]["finish_reason"], "tool_calls");

    let (text, _, _, finish, usage) = read_stream(post(&model, ask(true)).await).await;
    assert_eq!(
        (text.as_str(), finish.as_str(), usage),
        ("streamed words arrive in pieces", "stop", true)
    );
    let (_, name, args, finish, _) = read_stream(post(&model, ask(true)).await).await;
    assert_eq!((name.as_str(), finish.as_str()), ("exec", "tool_calls"));
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"command": "ls -la"})
    );

    let exhausted = post(&model, ask(false)).await;
    assert_eq!(exhausted.status(), 500);
    let requests = model.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].messages()[0]["content"], "hi");
    assert!(requests[2].stream());
    assert_eq!(
        requests[0].header("Authorization").as_deref(),
        Some("Bearer sk-test")
    );
}

#[tokio::test]
async fn errors_carry_openai_shape_and_retry_after() {
    let model = ScriptedModel::start(vec![Reply::Error {
        status: 429,
        message: "slow down".into(),
        retry_after: Some(3),
    }])
    .await
    .unwrap();
    let response = post(&model, ask(false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "slow down");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn waits_for_requests_without_polling() {
    let model = ScriptedModel::start(vec![Reply::Hang]).await.unwrap();
    assert!(
        model
            .wait_for_requests(1, Duration::from_millis(50))
            .await
            .is_err()
    );
    let url = format!("{}/chat/completions", model.base_url());
    let hung = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&ask(false))
            .send()
            .await
    });
    model
        .wait_for_requests(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!hung.is_finished(), "a hung reply never answers");
    hung.abort();
}

#[tokio::test]
async fn models_lists_the_scripted_ids() {
    let model = ScriptedModel::start(vec![]).await.unwrap();
    let models: Value = reqwest::get(format!("{}/models", model.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["scripted-1", "scripted"]);
}

/// Every `data:` payload of an SSE body, `[DONE]` excluded, with whether it was seen last.
fn sse_chunks(body: &str) -> (Vec<Value>, bool) {
    let payloads: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    let done_last = payloads.last() == Some(&"[DONE]");
    let chunks = payloads
        .iter()
        .filter(|p| **p != "[DONE]")
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    (chunks, done_last)
}

#[tokio::test]
async fn streams_chunks_shaped_like_openai() {
    let model = ScriptedModel::start(vec![
        Reply::text("a reply long enough to be cut into pieces"),
        Reply::tool_call("write_file", json!({"path": "notes.md", "content": "x"})),
    ])
    .await
    .unwrap();

    let response = post(&model, ask(true)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (chunks, done_last) = sse_chunks(&response.text().await.unwrap());
    assert!(done_last, "[DONE] closes the stream");
    for chunk in &chunks {
        assert_eq!(
            chunk["model"], "scripted-1",
            "the requested model is echoed"
        );
        assert!(chunk["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(chunk["created"].as_u64().is_some());
        for choice in chunk["choices"].as_array().unwrap() {
            assert_eq!(choice["index"], 0);
            assert!(choice["logprobs"].is_null());
            assert!(choice.get("finish_reason").is_some());
        }
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text_chunks = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert!(
        text_chunks >= 2,
        "text arrives in several chunks, got {text_chunks}"
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["prompt_tokens"].as_u64().unwrap() >= 1);

    // Without include_usage there is no usage chunk: the finish chunk is last.
    let (chunks, _) = sse_chunks(
        &post(
            &model,
            json!({"model": "m", "messages": [], "stream": true}),
        )
        .await
        .text()
        .await
        .unwrap(),
    );
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(
        calls[0],
        &json!({"index": 0, "id": "call_2", "type": "function",
                "function": {"name": "write_file", "arguments": ""}})
    );
    assert!(calls.len() >= 3, "arguments arrive in several fragments");
    for fragment in &calls[1..] {
        let keys: Vec<&String> = fragment.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["function", "index"]);
        assert_eq!(fragment["function"].as_object().unwrap().len(), 1);
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert!(last.get("usage").is_none());
}

#[tokio::test]
async fn raw_arguments_fixed_answers_and_exhaustion() {
    let model = ScriptedModel::start(vec![Reply::RawToolCall {
        name: "exec".into(),
        arguments: "{not json".into(),
    }])
    .await
    .unwrap();
    let body: Value = post(&model, ask(false)).await.json().await.unwrap();
    let message = &body["choices"][0]["message"];
    assert!(message["content"].is_null());
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        "{not json"
    );
    assert_eq!(body["object"], "chat.completion");

    let exhausted = post(&model, ask(true)).await;
    assert_eq!(exhausted.status(), 500);
    let error: Value = exhausted.json().await.unwrap();
    assert_eq!(
        error["error"],
        json!({"message": "the scripted model has no reply left", "type": "server_error",
               "param": null, "code": null})
    );
    assert_eq!(
        model.requests().len(),
        2,
        "errored requests are recorded too"
    );

    let fixed = ScriptedModel::start_fixed("pong", Duration::ZERO)
        .await
        .unwrap();
    for _ in 0..3 {
        let body: Value = post(&fixed, ask(false)).await.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "pong");
    }
}

#[tokio::test]
async fn delayed_and_hanging_replies_hold_the_answer_back() {
    let model = ScriptedModel::start(vec![
        Reply::text("late").delayed(Duration::from_millis(300)),
        Reply::HangMidStream("partial".into()),
    ])
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let body: Value = post(&model, ask(false)).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "late");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // The partial text arrives, then the stream stalls without finishing.
    let mut response = post(&model, ask(true)).await;
    let mut seen = String::new();
    while !seen.contains("partial") {
        let bytes = response.chunk().await.unwrap().unwrap();
        seen += &String::from_utf8_lossy(&bytes);
    }
    let next = tokio::time::timeout(Duration::from_millis(200), response.chunk()).await;
    assert!(next.is_err(), "nothing follows the partial text: {next:?}");
    assert!(!seen.contains("finish_reason\":\"stop"));
}
