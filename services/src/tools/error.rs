//! The structured error every tool returns; the model sees it as `{error:{type,message,hint}}`.

use serde::Serialize;

/// The class of a tool failure, so the model can react to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolErrorKind {
    InvalidArguments,
    NotFound,
    OutsideWorkspace,
    Denied,
    Timeout,
    TooLarge,
    Io,
    Network,
    NoMatch,
    Failed,
    Cancelled,
    UnknownTool,
    /// The runtime has too many tool calls in flight; try again shortly.
    Busy,
    /// What the tool needs (an MCP server, a peer agent) cannot be reached now.
    Unavailable,
}

impl ToolErrorKind {
    /// The kind as its serialized name (`invalid_arguments`, `denied`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArguments => "invalid_arguments",
            Self::NotFound => "not_found",
            Self::OutsideWorkspace => "outside_workspace",
            Self::Denied => "denied",
            Self::Timeout => "timeout",
            Self::TooLarge => "too_large",
            Self::Io => "io",
            Self::Network => "network",
            Self::NoMatch => "no_match",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::UnknownTool => "unknown_tool",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A tool failure reported back to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{kind:?}: {message}")]
pub struct ToolError {
    #[serde(rename = "type")]
    pub kind: ToolErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ToolError {
    pub fn new(kind: ToolErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The JSON text the model receives as the tool result.
    pub fn to_model_content(&self) -> String {
        serde_json::json!({ "error": self }).to_string()
    }
}
