//! The Anthropic Messages stream: events assembled back into one response.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::anthropic_wire::{Block, WireUsage, arguments_text, finish_reason, usage};
use super::{ChatResponse, ProviderError};
use crate::domain::ToolCall;

/// One streamed event (the `data:` JSON; its `type` repeats the SSE event name).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Event {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: Value,
    },
    /// `ping`, `content_block_stop` and event kinds added later.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StartedMessage {
    model: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking and signature deltas.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessageDeltaBody {
    stop_reason: Option<String>,
}

/// A tool call being streamed: its input arrives as pieces of JSON text.
#[derive(Debug)]
struct StreamedCall {
    id: String,
    name: String,
    /// The input given at block start, used when no `input_json_delta` follows.
    initial: Value,
    json: String,
}

/// A streamed answer being put together.
#[derive(Debug, Default)]
pub(crate) struct StreamAssembly {
    content: String,
    /// Tool-use blocks by content-block index.
    calls: BTreeMap<usize, StreamedCall>,
    stop_reason: Option<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
    model: Option<String>,
    stopped: bool,
}

impl StreamAssembly {
    /// Applies one event and returns the text it adds, to forward to the watcher.
    pub(crate) fn apply(&mut self, event: Event) -> Result<Option<String>, ProviderError> {
        match event {
            Event::MessageStart { message } => {
                self.model = message.model;
                if let Some(wire) = message.usage {
                    self.prompt_tokens = wire.prompt_tokens();
                    self.completion_tokens = wire.output_tokens.unwrap_or(0);
                }
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                Block::Text { text } if !text.is_empty() => {
                    self.content.push_str(&text);
                    return Ok(Some(text));
                }
                Block::ToolUse { id, name, input } => {
                    self.calls.insert(
                        index,
                        StreamedCall {
                            id,
                            name,
                            initial: input,
                            json: String::new(),
                        },
                    );
                }
                _ => {}
            },
            Event::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => {
                    self.content.push_str(&text);
                    return Ok(Some(text));
                }
                BlockDelta::InputJsonDelta { partial_json } => {
                    let call = self.calls.get_mut(&index).ok_or_else(|| {
                        ProviderError::InvalidResponse(format!(
                            "input_json_delta for content block {index}, which is not a tool_use block"
                        ))
                    })?;
                    call.json.push_str(&partial_json);
                }
                _ => {}
            },
            Event::MessageDelta { delta, usage } => {
                self.stop_reason = delta.stop_reason.or(self.stop_reason.take());
                if let Some(wire) = usage {
                    // `output_tokens` here is the running total, not an increment.
                    if let Some(output) = wire.output_tokens {
                        self.completion_tokens = output;
                    }
                    if wire.input_tokens.is_some() {
                        self.prompt_tokens = wire.prompt_tokens();
                    }
                }
            }
            Event::MessageStop => self.stopped = true,
            Event::Error { error } => return Err(stream_error(&error)),
            Event::Other => {}
        }
        Ok(None)
    }

    /// Whether `message_stop` arrived.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The whole answer; a stream that ended before `message_stop` was cut off.
    pub(crate) fn finish(self, requested_model: &str) -> Result<ChatResponse, ProviderError> {
        if !self.stopped {
            return Err(ProviderError::Connection(
                "the response stream ended before the model finished".to_owned(),
            ));
        }
        let tool_calls: Vec<ToolCall> = self
            .calls
            .into_values()
            .map(|call| ToolCall {
                id: call.id,
                name: call.name,
                arguments: if call.json.trim().is_empty() {
                    arguments_text(&call.initial)
                } else {
                    call.json
                },
            })
            .collect();
        Ok(ChatResponse {
            content: Some(self.content).filter(|text| !text.is_empty()),
            finish_reason: finish_reason(self.stop_reason.as_deref(), !tool_calls.is_empty()),
            tool_calls,
            usage: usage(self.prompt_tokens, self.completion_tokens),
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
        })
    }
}

/// Anthropic reports overload and API failures inside the stream; mapped to the HTTP
/// status the same failure has outside a stream, so retry rules apply alike.
fn stream_error(error: &Value) -> ProviderError {
    let kind = error
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the provider reported an error mid-stream");
    let status = match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    };
    let message = if kind.is_empty() {
        message.to_owned()
    } else {
        format!("{kind}: {message}")
    };
    ProviderError::Http {
        status,
        message,
        retry_after: None,
    }
}
