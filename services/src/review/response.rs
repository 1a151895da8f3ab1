//! What a reviewer answers, in Placet's response shapes, and why an answer is refused.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::payload::ReviewType;
use super::secrets::SecretString;

/// Answer to an approval: `{"selectedOption": ..., "comment"?: ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalResponse {
    pub selected_option: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Answer to a selection: `{"selectedIds": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectionResponse {
    pub selected_ids: Vec<String>,
}

/// Answer to a text input: `{"text": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextInputResponse {
    pub text: String,
}

/// A reviewer's answer, typed by review. Serializes to exactly the Placet shape of
/// its type (a form answer is the bare `{<name>: value}` object).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReviewResponse {
    Approval(ApprovalResponse),
    Selection(SelectionResponse),
    Form(Map<String, Value>),
    TextInput(TextInputResponse),
    Freeform(Value),
}

impl ReviewResponse {
    pub fn review_type(&self) -> ReviewType {
        match self {
            Self::Approval(_) => ReviewType::Approval,
            Self::Selection(_) => ReviewType::Selection,
            Self::Form(_) => ReviewType::Form,
            Self::TextInput(_) => ReviewType::TextInput,
            Self::Freeform(_) => ReviewType::Freeform,
        }
    }

    pub fn to_json(&self) -> Value {
        // Only strings, arrays and JSON values are serialized here: this cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// An answer that passed validation against its review. Password values of a form
/// are already separated: `response()` holds `${credentials.KEY}` placeholders in
/// their place, so this value is safe to store, log and show the agent. Its `Debug`
/// prints the secrets as `[REDACTED]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedResponse {
    pub(super) response: ReviewResponse,
    pub(super) secrets: Vec<(String, SecretString)>,
}

impl ValidatedResponse {
    /// The answer with secrets replaced by placeholders.
    pub fn response(&self) -> &ReviewResponse {
        &self.response
    }

    /// Whether the answer carried password values for the credential store.
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// The redacted answer as JSON, and the secrets keyed by credential key. The raw
    /// secrets must go straight to the credential store; see [`super::secrets`].
    pub fn split_secrets(self) -> (Value, Vec<(String, SecretString)>) {
        (self.response.to_json(), self.secrets)
    }
}

/// Why a reviewer's answer is refused (HTTP 422). Every message starts with the
/// field at fault, so a form can point at it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResponseError {
    #[error("response: a {review_type} answer must be a JSON object")]
    NotAnObject { review_type: &'static str },
    #[error("{field}: required")]
    Missing { field: String },
    #[error("{field}: unknown field for a {review_type} answer")]
    UnknownField {
        field: String,
        review_type: &'static str,
    },
    #[error("{field}: must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("selectedOption: {value:?} is not one of the options ({known})")]
    UnknownOption { value: String, known: String },
    #[error("comment: this review does not accept a comment")]
    CommentNotAllowed,
    #[error("selectedIds: a single selection takes exactly one id, got {count}")]
    NotExactlyOne { count: usize },
    #[error("selectedIds: {id:?} is not one of the items")]
    UnknownItem { id: String },
    #[error("selectedIds: {id:?} is selected more than once")]
    DuplicateItem { id: String },
    #[error("{field}: {value:?} is not one of the field's options")]
    NotAnOption { field: String, value: String },
    #[error("{field}: {problem}")]
    InvalidFormat {
        field: String,
        problem: &'static str,
    },
    #[error("{field}: {value} is below the minimum {min}")]
    BelowMinimum { field: String, value: f64, min: f64 },
    #[error("{field}: {value} is above the maximum {max}")]
    AboveMaximum { field: String, value: f64, max: f64 },
    #[error("{field}: {actual} characters, at least {min} needed")]
    TooShort {
        field: String,
        min: u64,
        actual: usize,
    },
    #[error("{field}: {actual} characters, at most {max} allowed")]
    TooLong {
        field: String,
        max: u64,
        actual: usize,
    },
}

impl ResponseError {
    /// The response field at fault, for the `field` of a 422 body.
    pub fn field(&self) -> &str {
        match self {
            Self::NotAnObject { .. } => "response",
            Self::CommentNotAllowed => "comment",
            Self::UnknownOption { .. } => "selectedOption",
            Self::NotExactlyOne { .. } | Self::UnknownItem { .. } | Self::DuplicateItem { .. } => {
                "selectedIds"
            }
            Self::Missing { field }
            | Self::UnknownField { field, .. }
            | Self::WrongType { field, .. }
            | Self::NotAnOption { field, .. }
            | Self::InvalidFormat { field, .. }
            | Self::BelowMinimum { field, .. }
            | Self::AboveMaximum { field, .. }
            | Self::TooShort { field, .. }
            | Self::TooLong { field, .. } => field,
        }
    }

    /// A stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnObject { .. } => "not_an_object",
            Self::Missing { .. } => "missing",
            Self::UnknownField { .. } => "unknown_field",
            Self::WrongType { .. } => "wrong_type",
            Self::UnknownOption { .. } => "unknown_option",
            Self::CommentNotAllowed => "comment_not_allowed",
            Self::NotExactlyOne { .. } => "not_exactly_one",
            Self::UnknownItem { .. } => "unknown_item",
            Self::DuplicateItem { .. } => "duplicate_item",
            Self::NotAnOption { .. } => "not_an_option",
            Self::InvalidFormat { .. } => "invalid_format",
            Self::BelowMinimum { .. } => "below_minimum",
            Self::AboveMaximum { .. } => "above_maximum",
            Self::TooShort { .. } => "too_short",
            Self::TooLong { .. } => "too_long",
        }
    }
}
