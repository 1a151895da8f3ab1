//! The OpenAI chat-completions wire format: the request body, the response, and the
//! streamed chunks assembled back into one response.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChatRequest, ChatResponse, FinishReason, ProviderError};
use crate::domain::{ChatMessage, Role, ToolCall, Usage};

/// The JSON body of a `/chat/completions` request.
pub(crate) fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": request.messages.iter().map(message).collect::<Vec<_>>(),
    });
    if !request.tools.is_empty() {
        body["tools"] = request.tools.openai_json().clone();
    }
    if let Some(max_tokens) = request.max_tokens {
        body["max_tokens"] = json!(max_tokens);
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature_value(temperature));
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
    }
    body
}

/// `0.1f32` widened to f64 is `0.10000000149...`; round back to what the user wrote.
pub(crate) fn temperature_value(temperature: f32) -> f64 {
    (f64::from(temperature) * 1e6).round() / 1e6
}

fn message(message: &ChatMessage) -> Value {
    match message.role {
        Role::System | Role::User => json!({
            "role": message.role,
            "content": message.content.as_deref().unwrap_or_default(),
        }),
        Role::Assistant => {
            let mut value = json!({ "role": "assistant", "content": message.content });
            if !message.tool_calls.is_empty() {
                value["tool_calls"] = message
                    .tool_calls
                    .iter()
                    .map(|call| {
                        json!({
                            "id": call.id,
                            "type": "function",
                            "function": { "name": call.name, "arguments": call.arguments },
                        })
                    })
                    .collect();
            }
            value
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content.as_deref().unwrap_or_default(),
        }),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Completion {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Option<WireMessage>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    content: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: Option<String>,
    /// A JSON string per the spec; some compatible servers send the object itself.
    arguments: Option<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        let prompt_tokens = usage.prompt_tokens.unwrap_or(0);
        let completion_tokens = usage.completion_tokens.unwrap_or(0);
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: usage
                .total_tokens
                .unwrap_or(prompt_tokens + completion_tokens),
        }
    }
}

impl Completion {
    pub(crate) fn into_response(
        self,
        requested_model: &str,
    ) -> Result<ChatResponse, ProviderError> {
        let choice = self.choices.into_iter().next().ok_or_else(|| {
            ProviderError::InvalidResponse("the response has no choices".to_owned())
        })?;
        let message = choice.message.ok_or_else(|| {
            ProviderError::InvalidResponse("the first choice has no message".to_owned())
        })?;
        let tool_calls = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(position, call)| ToolCall {
                id: call_id(call.id, position),
                name: call.function.name.unwrap_or_default(),
                arguments: match call.function.arguments {
                    Some(Value::String(text)) => text,
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                },
            })
            .collect::<Vec<_>>();
        Ok(ChatResponse {
            content: message.content.filter(|text| !text.is_empty()),
            finish_reason: finish_reason(choice.finish_reason.as_deref(), !tool_calls.is_empty()),
            tool_calls,
            usage: self.usage.map(Usage::from).unwrap_or_default(),
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
        })
    }
}

/// A call must have an id for its result to refer to; a few servers omit it.
fn call_id(id: Option<String>, position: usize) -> String {
    id.filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("call_{position}"))
}

/// Maps the wire's finish reason. Some compatible servers (vLLM, Ollama) say `stop`
/// while returning tool calls; the calls are what the runtime must act on.
fn finish_reason(reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        _ if has_tool_calls => FinishReason::ToolCalls,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// One `data:` chunk of a streamed completion.
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    model: Option<String>,
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<WireUsage>,
    /// OpenRouter and others report failures inside the stream.
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<DeltaToolCall>>,
}

#[derive(Debug, Deserialize)]
struct DeltaToolCall {
    index: Option<usize>,
    id: Option<String>,
    function: Option<DeltaFunction>,
}

#[derive(Debug, Deserialize)]
struct DeltaFunction {
    name: Option<String>,
    arguments: Option<String>,
}

/// A streamed answer being put together.
#[derive(Debug, Default)]
pub(crate) struct StreamAssembly {
    content: String,
    /// Tool calls by their stream `index`: fragments of several calls may interleave.
    calls: BTreeMap<usize, ToolCall>,
    finish: Option<String>,
    usage: Option<Usage>,
    model: Option<String>,
}

impl StreamAssembly {
    /// Applies one chunk and returns the text it adds, to forward to the watcher.
    pub(crate) fn apply(&mut self, chunk: Chunk) -> Result<Option<String>, ProviderError> {
        if let Some(error) = chunk.error {
            return Err(stream_error(&error));
        }
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        let Some(choice) = chunk.choices.and_then(|choices| choices.into_iter().next()) else {
            return Ok(None);
        };
        if choice.finish_reason.is_some() {
            self.finish = choice.finish_reason;
        }
        let Some(delta) = choice.delta else {
            return Ok(None);
        };
        for (position, fragment) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
            let call = self
                .calls
                .entry(fragment.index.unwrap_or(position))
                .or_insert_with(|| ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
            if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
                call.id = id;
            }
            if let Some(function) = fragment.function {
                // The name arrives whole with the first fragment; later repeats are ignored.
                if let Some(name) = function.name.filter(|_| call.name.is_empty()) {
                    call.name = name;
                }
                if let Some(arguments) = function.arguments {
                    call.arguments.push_str(&arguments);
                }
            }
        }
        let text = delta.content.filter(|text| !text.is_empty());
        if let Some(text) = &text {
            self.content.push_str(text);
        }
        Ok(text)
    }

    /// The whole answer. `completed` says whether the server marked the end (`[DONE]`);
    /// a stream that simply stops before any finish reason was cut off.
    pub(crate) fn finish(
        self,
        completed: bool,
        requested_model: &str,
    ) -> Result<ChatResponse, ProviderError> {
        if !completed && self.finish.is_none() {
            return Err(ProviderError::Connection(
                "the response stream ended before the model finished".to_owned(),
            ));
        }
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_values()
            .enumerate()
            .map(|(position, call)| ToolCall {
                id: call_id(Some(call.id), position),
                ..call
            })
            .collect();
        Ok(ChatResponse {
            content: Some(self.content).filter(|text| !text.is_empty()),
            finish_reason: finish_reason(self.finish.as_deref(), !tool_calls.is_empty()),
            tool_calls,
            usage: self.usage.unwrap_or_default(),
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
        })
    }
}

fn stream_error(error: &Value) -> ProviderError {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| error.as_str())
        .unwrap_or("the provider reported an error mid-stream")
        .to_owned();
    // A numeric code is an HTTP status by convention (OpenRouter); otherwise treat it as
    // an upstream failure, which may pass on retry.
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (400..600).contains(code))
        .unwrap_or(502);
    ProviderError::Http {
        status,
        message,
        retry_after: None,
    }
}
