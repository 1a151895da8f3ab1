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
    /// One tool call whose string arguments `"{{FIELD}}"` take the value of `FIELD` in
    /// the last tool result the request carries (its content parsed as JSON), as a
    /// model passes on an id a tool gave it.
    ToolCallFromResult { name: String, arguments: Value },
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

    /// See [`Reply::ToolCallFromResult`].
    pub fn tool_call_from_result(name: &str, arguments: Value) -> Reply {
        Reply::ToolCallFromResult {
            name: name.to_owned(),
            arguments,
        }
    }

    /// A [`Reply::ToolCallFromResult`] filled from the request `body`; any other
    /// reply as it is.
    pub(super) fn filled(self, body: &Value) -> Reply {
        let Reply::ToolCallFromResult {
            name,
            mut arguments,
        } = self
        else {
            return self;
        };
        let last: Value = body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "tool"))
            .and_then(|m| m["content"].as_str())
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or(Value::Null);
        if let Some(fields) = arguments.as_object_mut() {
            for value in fields.values_mut() {
                let field = value
                    .as_str()
                    .and_then(|v| v.strip_prefix("{{"))
                    .and_then(|v| v.strip_suffix("}}"))
                    .map(str::to_owned);
                if let Some(field) = field {
                    *value = last.get(&field).cloned().unwrap_or(Value::Null);
                }
            }
        }
        Reply::tool_call(&name, arguments)
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
