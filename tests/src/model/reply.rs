//! What the scripted model answers, one reply per request.

use std::time::Duration;

use serde_json::Value;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Assistant text.
    Text {
        content: String,
        delay: Option<Duration>,
    },
    /// One tool call with JSON arguments.
    ToolCall {
        name: String,
        arguments: Value,
        delay: Option<Duration>,
    },
    /// Several tool calls in one answer (name, JSON arguments), as models ask for
    /// parallel calls.
    ToolCalls(Vec<(String, Value)>),
    /// One tool call with the id given, as servers that number calls per answer
    /// (`call_0`, ...) send them, so the same id comes back step after step.
    ToolCallWithId {
        id: String,
        name: String,
        arguments: Value,
    },
    /// Several tool calls in one answer with the ids given (id, name, JSON arguments),
    /// as a hostile model sends them: repeated, empty or reused from an earlier step.
    ToolCallsWithIds(Vec<(String, String, Value)>),
    /// A tool call whose arguments are sent verbatim (e.g. invalid JSON).
    RawToolCall { name: String, arguments: String },
    /// An HTTP error in OpenAI's error shape, optionally with `Retry-After`.
    Error {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Stream this text, then stall forever (non-streaming requests just hang).
    HangMidStream(String),
}

impl Reply {
    pub fn text(content: impl Into<String>) -> Reply {
        Reply::Text {
            content: content.into(),
            delay: None,
        }
    }

    pub fn tool_call(name: &str, arguments: Value) -> Reply {
        Reply::ToolCall {
            name: name.to_owned(),
            arguments,
            delay: None,
        }
    }

    pub fn error(status: u16, message: &str) -> Reply {
        Reply::Error {
            status,
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// Waits `by` before answering.
    pub fn delayed(self, by: Duration) -> Reply {
        match self {
            Reply::Text { content, .. } => Reply::Text {
                content,
                delay: Some(by),
            },
            Reply::ToolCall {
                name, arguments, ..
            } => Reply::ToolCall {
                name,
                arguments,
                delay: Some(by),
            },
            other => other,
        }
    }

    pub(super) fn delay(&self) -> Option<Duration> {
        match self {
            Reply::Text { delay, .. } | Reply::ToolCall { delay, .. } => *delay,
            _ => None,
        }
    }
}
