//! The OpenAI chat-completions shapes the scripted model sends.

use serde_json::{Value, json};

/// An assistant answer: text or tool calls.
pub(super) enum Answer {
    Text(String),
    Calls(Vec<Call>),
}

/// One tool call of an answer.
pub(super) struct Call {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64 / 4).max(1)
}

pub(super) fn usage(prompt: &Value, answer: &Answer) -> Value {
    let prompt_tokens = tokens(&prompt.to_string());
    let completion_tokens = match answer {
        Answer::Text(text) => tokens(text),
        Answer::Calls(calls) => calls.iter().map(|c| tokens(&c.arguments) + 5).sum(),
    };
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

pub(super) fn completion(id: &str, model: &str, answer: &Answer, usage: Value) -> Value {
    let (message, finish) = match answer {
        Answer::Text(text) => (
            json!({"role": "assistant", "content": text, "refusal": null}),
            "stop",
        ),
        Answer::Calls(calls) => (
            json!({
                "role": "assistant",
                "content": null,
                "refusal": null,
                "tool_calls": calls.iter().map(|c| json!({
                    "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })).collect::<Vec<_>>(),
            }),
            "tool_calls",
        ),
    };
    json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    })
}

pub(super) fn chunk(id: &str, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    })
}

pub(super) fn usage_chunk(id: &str, model: &str, usage: Value) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
        "choices": [],
        "usage": usage,
    })
}

/// The deltas that stream `answer`: text in several pieces, a tool call as OpenAI
/// sends it (name first, then argument fragments).
pub(super) fn deltas(answer: &Answer) -> Vec<Value> {
    match answer {
        Answer::Text(text) => split(text, 3)
            .into_iter()
            .map(|piece| json!({"content": piece}))
            .collect(),
        Answer::Calls(calls) => {
            let mut out = Vec::new();
            for (index, call) in calls.iter().enumerate() {
                out.push(json!({"tool_calls": [{
                    "index": index, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}
                }]}));
                out.extend(split(&call.arguments, 4).into_iter().map(|piece| {
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                }));
            }
            out
        }
    }
}

/// Splits into about `parts` pieces on char boundaries.
fn split(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let size = chars.len().div_ceil(parts).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

pub(super) fn error(status: u16, message: &str) -> Value {
    let kind = match status {
        400 | 404 | 422 => "invalid_request_error",
        401 | 403 => "authentication_error",
        429 => "rate_limit_error",
        _ => "server_error",
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

pub(super) fn models() -> Value {
    let created = now();
    json!({
        "object": "list",
        "data": [
            {"id": "scripted-1", "object": "model", "created": created, "owned_by": "facio-tests"},
            {"id": "scripted", "object": "model", "created": created, "owned_by": "facio-tests"},
        ],
    })
}
