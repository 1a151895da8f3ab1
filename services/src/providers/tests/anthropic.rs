//! The Anthropic client against a server speaking the Messages wire.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::server::{Reply, ScriptedServer, limits};
use super::{chat_streaming, conversation, question};
use crate::config::ProviderConfig;
use crate::domain::{ToolCall, Usage};
use crate::providers::{AnthropicProvider, CallLimits, FinishReason, Provider, ProviderError};

fn provider(server: &ScriptedServer, limits: CallLimits) -> AnthropicProvider {
    let cfg = ProviderConfig {
        api_key: Some("sk-ant-test".into()),
        api_base: Some(server.base.clone()),
        ..ProviderConfig::default()
    };
    AnthropicProvider::new("anthropic", &cfg, limits).expect("provider")
}

fn quick() -> CallLimits {
    limits(Duration::from_secs(5), 2)
}

fn event(data: Value) -> String {
    let name = data["type"].as_str().unwrap_or("unknown").to_owned();
    format!("event: {name}\ndata: {data}\n\n")
}

fn message_start(input_tokens: u64) -> String {
    event(json!({
        "type": "message_start",
        "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [],
            "model": "claude-served", "stop_reason": null,
            "usage": { "input_tokens": input_tokens, "output_tokens": 1 },
        },
    }))
}

fn text_delta(index: u64, text: &str) -> String {
    event(json!({
        "type": "content_block_delta", "index": index,
        "delta": { "type": "text_delta", "text": text },
    }))
}

fn message_end(stop_reason: &str, output_tokens: u64) -> Vec<String> {
    vec![
        event(json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason, "stop_sequence": null },
            "usage": { "output_tokens": output_tokens },
        })),
        event(json!({ "type": "message_stop" })),
    ]
}

#[tokio::test]
async fn plain_call_sends_the_messages_shape_and_reads_the_answer() {
    let server = ScriptedServer::start(vec![Reply::ok(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-served",
        "content": [
            { "type": "text", "text": "Facio, " },
            { "type": "text", "text": "a runtime." },
        ],
        "stop_reason": "end_turn",
        "usage": { "input_tokens": 50, "output_tokens": 6, "cache_read_input_tokens": 10 },
    }))])
    .await;
    let provider = provider(&server, quick());

    let response = provider.chat(&conversation(), None).await.expect("answer");

    assert_eq!(response.content.as_deref(), Some("Facio, a runtime."));
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.model, "claude-served");
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 60,
            completion_tokens: 6,
            total_tokens: 66
        }
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.body,
        json!({
            "model": "test-model",
            "max_tokens": 256,
            "temperature": 0.2,
            "system": "You are terse.",
            "messages": [
                { "role": "user", "content": [{ "type": "text", "text": "What is in this repo?" }] },
                { "role": "assistant", "content": [
                    { "type": "text", "text": "Let me look." },
                    { "type": "tool_use", "id": "call_a", "name": "read_file", "input": { "path": "README.md" } },
                    { "type": "tool_use", "id": "call_b", "name": "list_dir", "input": { "path": "." } },
                ] },
                { "role": "user", "content": [
                    { "type": "tool_result", "tool_use_id": "call_a", "content": "# Facio" },
                    { "type": "tool_result", "tool_use_id": "call_b", "content": "README.md\nsrc/" },
                ] },
                { "role": "user", "content": [{ "type": "text", "text": "Summarise." }] },
            ],
            "tools": [{
                "name": "read_file",
                "description": "Reads a file.",
                "input_schema": { "type": "object", "properties": { "path": { "type": "string" } } },
            }],
        })
    );
}

#[tokio::test]
async fn streamed_text_and_tool_input_are_assembled() {
    let mut chunks = vec![
        message_start(30),
        event(json!({ "type": "ping" })),
        event(json!({
            "type": "content_block_start", "index": 0,
            "content_block": { "type": "text", "text": "" },
        })),
        text_delta(0, "Reading "),
        text_delta(0, "both."),
        event(json!({ "type": "content_block_stop", "index": 0 })),
        event(json!({
            "type": "content_block_start", "index": 1,
            "content_block": { "type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {} },
        })),
        event(json!({
            "type": "content_block_delta", "index": 1,
            "delta": { "type": "input_json_delta", "partial_json": "{\"path\": \"a" },
        })),
        event(json!({
            "type": "content_block_delta", "index": 1,
            "delta": { "type": "input_json_delta", "partial_json": ".rs\"}" },
        })),
        event(json!({ "type": "content_block_stop", "index": 1 })),
        event(json!({
            "type": "content_block_start", "index": 2,
            "content_block": { "type": "tool_use", "id": "toolu_2", "name": "list_dir", "input": {} },
        })),
        event(json!({ "type": "content_block_stop", "index": 2 })),
    ];
    chunks.extend(message_end("tool_use", 25));
    let server = ScriptedServer::start(vec![Reply::stream(chunks)]).await;
    let provider = provider(&server, quick());

    let (outcome, deltas) = chat_streaming(&provider, &question()).await;
    let response = outcome.expect("answer");

    assert_eq!(deltas, vec!["Reading ", "both."]);
    assert_eq!(response.content.as_deref(), Some("Reading both."));
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "toolu_1".into(),
                name: "read_file".into(),
                arguments: r#"{"path": "a.rs"}"#.into()
            },
            ToolCall {
                id: "toolu_2".into(),
                name: "list_dir".into(),
                arguments: "{}".into()
            },
        ]
    );
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 30,
            completion_tokens: 25,
            total_tokens: 55
        }
    );
    let sent = &server.requests()[0];
    assert_eq!(sent.body["stream"], json!(true));
    assert_eq!(
        sent.body["max_tokens"],
        json!(4096),
        "required, so defaulted"
    );
    assert!(sent.body.get("system").is_none());
    assert!(sent.body.get("tools").is_none());
}

#[tokio::test]
async fn rate_limit_and_overload_are_retried() {
    let mut good = vec![message_start(5), text_delta(0, "ok")];
    good.extend(message_end("end_turn", 2));
    let server = ScriptedServer::start(vec![
        Reply::Json {
            status: 429,
            headers: vec![("retry-after", "0")],
            body: json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "slow down" } }),
        },
        // Overload reported inside the stream, before any text.
        Reply::stream(vec![
            message_start(5),
            event(json!({
                "type": "error",
                "error": { "type": "overloaded_error", "message": "Overloaded" },
            })),
        ]),
        Reply::stream(good),
    ])
    .await;
    let provider = provider(&server, quick());

    let (outcome, deltas) = chat_streaming(&provider, &question()).await;

    assert_eq!(outcome.expect("answer").content.as_deref(), Some("ok"));
    assert_eq!(deltas, vec!["ok"]);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn invalid_request_is_reported_and_not_retried() {
    let server = ScriptedServer::start(vec![Reply::Json {
        status: 400,
        headers: Vec::new(),
        body: json!({
            "type": "error",
            "error": { "type": "invalid_request_error", "message": "max_tokens: must be positive" },
        }),
    }])
    .await;
    let provider = provider(&server, quick());

    let error = provider.chat(&question(), None).await.expect_err("fails");

    assert!(
        matches!(&error, ProviderError::Http { status: 400, message, .. } if message == "max_tokens: must be positive"),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn stream_that_hangs_mid_answer_times_out() {
    let server = ScriptedServer::start(vec![Reply::Stream {
        chunks: vec![message_start(5), text_delta(0, "Thinking")],
        hang: true,
    }])
    .await;
    let provider = provider(&server, limits(Duration::from_millis(300), 2));

    let started = Instant::now();
    let (outcome, deltas) = chat_streaming(&provider, &question()).await;

    assert!(
        matches!(outcome, Err(ProviderError::Timeout(_))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(deltas, vec!["Thinking"]);
    assert_eq!(server.requests().len(), 1, "no retry after text was shown");
}
