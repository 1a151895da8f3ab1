//! The Anthropic Messages wire format: the request body and the response.

use serde::Deserialize;
use serde_json::{Value, json};

use super::openai_wire::temperature_value;
use super::{ChatRequest, ChatResponse, FinishReason};
use crate::domain::{ChatMessage, Role, ToolCall, Usage};

/// The Messages API requires `max_tokens`; used when the request leaves it open.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The JSON body of a `/v1/messages` request.
pub(crate) fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|message| message.role == Role::System)
        .filter_map(|message| message.content.as_deref())
        .filter(|text| !text.is_empty())
        .collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages(&request.messages),
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !request.tools.is_empty() {
        body["tools"] = request.tools.anthropic_json().clone();
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature_value(temperature));
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// Conversation turns as content blocks. System messages went to `system`; tool results
/// become `tool_result` blocks of a user turn, consecutive ones sharing that turn.
fn messages(messages: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<Value> = Vec::new();
    let mut previous_was_tool = false;
    for message in messages {
        let is_tool = message.role == Role::Tool;
        match message.role {
            Role::System => continue,
            Role::User => turns.push(json!({
                "role": "user",
                "content": [text_block(message.content.as_deref().unwrap_or_default())],
            })),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if let Some(text) = message.content.as_deref().filter(|t| !t.is_empty()) {
                    blocks.push(text_block(text));
                }
                blocks.extend(message.tool_calls.iter().map(|call| {
                    json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": tool_input(&call.arguments),
                    })
                }));
                // The API rejects empty turns; an empty assistant message carries nothing.
                if !blocks.is_empty() {
                    turns.push(json!({ "role": "assistant", "content": blocks }));
                }
            }
            Role::Tool => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": message.content.as_deref().unwrap_or_default(),
                });
                let open_turn = turns
                    .last_mut()
                    .filter(|_| previous_was_tool)
                    .and_then(|turn| turn["content"].as_array_mut());
                match open_turn {
                    Some(blocks) => blocks.push(block),
                    None => turns.push(json!({ "role": "user", "content": [block] })),
                }
            }
        }
        previous_was_tool = is_tool;
    }
    turns
}

fn text_block(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// `tool_use.input` must be an object, but the model's arguments are kept verbatim and
/// may not be one; such text is wrapped so the history still shows what was sent.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({ "invalid_arguments": arguments }),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Message {
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Thinking and any newer block kinds carry nothing the runtime uses.
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(crate) struct WireUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Cached prompt tokens are still prompt tokens; they are counted with the rest.
    pub(crate) fn prompt_tokens(&self) -> u64 {
        self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0)
    }
}

pub(crate) fn usage(prompt_tokens: u64, completion_tokens: u64) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

pub(crate) fn finish_reason(stop_reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match stop_reason {
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// Tool input as the JSON text the runtime keeps.
pub(crate) fn arguments_text(input: &Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

impl Message {
    pub(crate) fn into_response(self, requested_model: &str) -> ChatResponse {
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for block in self.content {
            match block {
                Block::Text { text } => content.push_str(&text),
                Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: arguments_text(&input),
                }),
                Block::Other => {}
            }
        }
        let wire = self.usage.unwrap_or_default();
        ChatResponse {
            content: Some(content).filter(|text| !text.is_empty()),
            finish_reason: finish_reason(self.stop_reason.as_deref(), !tool_calls.is_empty()),
            tool_calls,
            usage: usage(wire.prompt_tokens(), wire.output_tokens.unwrap_or(0)),
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
        }
    }
}
