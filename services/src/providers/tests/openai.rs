//! The OpenAI-compatible client against a server speaking the chat-completions wire.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::server::{Reply, ScriptedServer, limits};
use super::{chat_streaming, conversation, question};
use crate::config::ProviderConfig;
use crate::domain::{ToolCall, Usage};
use crate::providers::{CallLimits, FinishReason, OpenAiProvider, Provider, ProviderError};

fn provider(server: &ScriptedServer, key: Option<&str>, limits: CallLimits) -> OpenAiProvider {
    let cfg = ProviderConfig {
        api_key: key.map(str::to_owned),
        api_base: Some(format!("{}/v1/", server.base)),
        extra_headers: BTreeMap::from([("x-team".to_owned(), "blue".to_owned())]),
        kind: None,
    };
    OpenAiProvider::new("local", &cfg, "", limits).expect("provider")
}

fn quick() -> CallLimits {
    limits(Duration::from_secs(5), 2)
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({
        "model": "served-model",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    format!("data: {body}\n\n")
}

fn usage_chunk(prompt: u64, completion: u64) -> String {
    let body = json!({
        "choices": [],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion },
    });
    format!("data: {body}\n\n")
}

#[tokio::test]
async fn plain_call_sends_the_openai_shape_and_reads_the_answer() {
    let server = ScriptedServer::start(vec![Reply::ok(json!({
        "model": "served-model",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": "It is Facio." },
            "finish_reason": "stop",
        }],
        "usage": { "prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44 },
    }))])
    .await;
    let provider = provider(&server, Some("sk-test"), quick());

    let response = provider.chat(&conversation(), None).await.expect("answer");

    assert_eq!(response.content.as_deref(), Some("It is Facio."));
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert!(response.tool_calls.is_empty());
    assert_eq!(response.model, "served-model");
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 40,
            completion_tokens: 4,
            total_tokens: 44
        }
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent.header("x-team"), Some("blue"));
    assert_eq!(
        sent.body,
        json!({
            "model": "test-model",
            "messages": [
                { "role": "system", "content": "You are terse." },
                { "role": "user", "content": "What is in this repo?" },
                { "role": "assistant", "content": "Let me look.", "tool_calls": [
                    { "id": "call_a", "type": "function",
                      "function": { "name": "read_file", "arguments": "{\"path\":\"README.md\"}" } },
                    { "id": "call_b", "type": "function",
                      "function": { "name": "list_dir", "arguments": "{\"path\":\".\"}" } },
                ] },
                { "role": "tool", "tool_call_id": "call_a", "content": "# Facio" },
                { "role": "tool", "tool_call_id": "call_b", "content": "README.md\nsrc/" },
                { "role": "user", "content": "Summarise." },
            ],
            "tools": [{ "type": "function", "function": {
                "name": "read_file",
                "description": "Reads a file.",
                "parameters": { "type": "object", "properties": { "path": { "type": "string" } } },
            } }],
            "max_tokens": 256,
            "temperature": 0.2,
        })
    );
}

#[tokio::test]
async fn streamed_text_reaches_the_watcher_as_it_arrives() {
    let text_chunk = chunk(json!({ "content": "Hello" }), None);
    let (first_half, second_half) = text_chunk.split_at(20);
    let server = ScriptedServer::start(vec![Reply::stream(vec![
        chunk(json!({ "role": "assistant", "content": "" }), None),
        ": keep-alive\n\n".to_owned(),
        first_half.to_owned(),
        second_half.to_owned(),
        chunk(json!({ "content": ", world" }), None),
        chunk(json!({}), Some("stop")),
        usage_chunk(9, 3),
        "data: [DONE]\n\n".to_owned(),
    ])])
    .await;
    let provider = provider(&server, None, quick());

    let (outcome, deltas) = chat_streaming(&provider, &question()).await;
    let response = outcome.expect("answer");

    assert_eq!(deltas, vec!["Hello", ", world"]);
    assert_eq!(response.content.as_deref(), Some("Hello, world"));
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.usage.total_tokens, 12);
    let sent = &server.requests()[0];
    assert_eq!(sent.header("authorization"), None, "no key, no auth header");
    assert_eq!(sent.body["stream"], json!(true));
    assert_eq!(
        sent.body["stream_options"],
        json!({ "include_usage": true })
    );
    assert!(sent.body.get("tools").is_none(), "no tools, no tools field");
    assert!(sent.body.get("max_tokens").is_none());
}

#[tokio::test]
async fn streamed_tool_call_fragments_are_assembled_by_index() {
    let call = |index: u64, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut fragment = json!({ "index": index, "function": { "arguments": args } });
        if let Some(id) = id {
            fragment["id"] = json!(id);
            fragment["type"] = json!("function");
        }
        if let Some(name) = name {
            fragment["function"]["name"] = json!(name);
        }
        chunk(json!({ "tool_calls": [fragment] }), None)
    };
    let server = ScriptedServer::start(vec![Reply::stream(vec![
        call(0, Some("call_1"), Some("read_file"), ""),
        call(1, Some("call_2"), Some("grep"), ""),
        call(0, None, None, "{\"path\":"),
        call(1, None, None, "{\"pattern\":\"fn \","),
        call(0, None, None, "\"a.rs\"}"),
        call(1, None, None, "\"path\":\"src\"}"),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(20, 15),
        "data: [DONE]\n\n".to_owned(),
    ])])
    .await;
    let provider = provider(&server, Some("sk-test"), quick());

    let (outcome, deltas) = chat_streaming(&provider, &conversation()).await;
    let response = outcome.expect("answer");

    assert!(deltas.is_empty());
    assert_eq!(response.content, None);
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "call_1".into(),
                name: "read_file".into(),
                arguments: r#"{"path":"a.rs"}"#.into()
            },
            ToolCall {
                id: "call_2".into(),
                name: "grep".into(),
                arguments: r#"{"pattern":"fn ","path":"src"}"#.into()
            },
        ]
    );
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 20,
            completion_tokens: 15,
            total_tokens: 35
        }
    );
}

#[tokio::test]
async fn rate_limit_waits_as_asked_then_succeeds() {
    let server = ScriptedServer::start(vec![
        Reply::Json {
            status: 429,
            headers: vec![("retry-after", "1")],
            body: json!({ "error": { "message": "slow down" } }),
        },
        Reply::ok(json!({
            "choices": [{ "message": { "content": "done" }, "finish_reason": "stop" }],
        })),
    ])
    .await;
    let provider = provider(&server, None, quick());

    let started = Instant::now();
    let response = provider.chat(&question(), None).await.expect("answer");

    assert_eq!(response.content.as_deref(), Some("done"));
    assert_eq!(server.requests().len(), 2);
    // Retry-After (1s) was honoured up to max_delay (200ms), far above the 1ms backoff.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200), "waited {waited:?}");
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let server = ScriptedServer::start(
        (0..3)
            .map(|_| Reply::error(500, "upstream exploded"))
            .collect(),
    )
    .await;
    let provider = provider(&server, None, quick());

    let error = provider.chat(&question(), None).await.expect_err("fails");

    assert!(
        matches!(&error, ProviderError::Http { status: 500, message, .. } if message == "upstream exploded"),
        "{error:?}"
    );
    assert_eq!(
        server.requests().len(),
        3,
        "one call and max_retries=2 retries"
    );
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let server = ScriptedServer::start(vec![
        Reply::error(400, "model 'nope' does not exist"),
        Reply::ok(json!({ "choices": [] })),
    ])
    .await;
    let provider = provider(&server, None, quick());

    let error = provider.chat(&question(), None).await.expect_err("fails");

    assert_eq!(
        error.to_string(),
        "model provider returned HTTP 400: model 'nope' does not exist"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn stream_that_hangs_after_text_times_out_without_retry() {
    let server = ScriptedServer::start(vec![
        Reply::Stream {
            chunks: vec![chunk(json!({ "content": "Hel" }), None)],
            hang: true,
        },
        Reply::stream(vec![
            chunk(json!({ "content": "Hello" }), Some("stop")),
            "data: [DONE]\n\n".to_owned(),
        ]),
    ])
    .await;
    let provider = provider(&server, None, limits(Duration::from_millis(300), 2));

    let started = Instant::now();
    let (outcome, deltas) = chat_streaming(&provider, &question()).await;

    assert!(
        matches!(outcome, Err(ProviderError::Timeout(limit)) if limit == Duration::from_millis(300)),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(deltas, vec!["Hel"], "the watcher never sees text twice");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn stream_that_hangs_before_any_text_is_retried() {
    let server = ScriptedServer::start(vec![
        Reply::Stream {
            chunks: vec![chunk(json!({ "role": "assistant" }), None)],
            hang: true,
        },
        Reply::stream(vec![
            chunk(json!({ "content": "Hello" }), Some("stop")),
            "data: [DONE]\n\n".to_owned(),
        ]),
    ])
    .await;
    let provider = provider(&server, None, limits(Duration::from_millis(300), 2));

    let (outcome, deltas) = chat_streaming(&provider, &question()).await;

    assert_eq!(outcome.expect("answer").content.as_deref(), Some("Hello"));
    assert_eq!(deltas, vec!["Hello"]);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn silent_server_fails_within_the_limit() {
    let server = ScriptedServer::start(vec![Reply::Stall]).await;
    let provider = provider(&server, None, limits(Duration::from_millis(300), 0));

    let started = Instant::now();
    let error = provider.chat(&question(), None).await.expect_err("fails");

    assert!(matches!(error, ProviderError::Timeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stream_cut_off_before_the_end_is_an_error() {
    let server = ScriptedServer::start(vec![Reply::stream(vec![chunk(
        json!({ "content": "Hal" }),
        None,
    )])])
    .await;
    let provider = provider(&server, None, limits(Duration::from_secs(5), 0));

    let (outcome, _) = chat_streaming(&provider, &question()).await;

    assert!(
        matches!(&outcome, Err(ProviderError::Connection(message)) if message.contains("ended before")),
        "{outcome:?}"
    );
}
