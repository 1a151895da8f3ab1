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
