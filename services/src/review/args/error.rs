//! Why a HITL tool call cannot open a review.

use super::super::request::MAX_REVIEW_TIMEOUT_S;
use crate::tools::{ToolError, ToolErrorKind};

/// Why a HITL tool call cannot open a review. Messages start with the argument path
/// (`fields[2].options`), so the model knows what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReviewArgsError {
    #[error("{0:?} is not a review tool")]
    UnknownTool(String),
    #[error("{field}: must be a JSON object")]
    NotAnObject { field: String },
    #[error("{field}: unknown argument")]
    UnknownArgument { field: String },
    #[error("{field}: required")]
    Missing { field: String },
    #[error("{field}: {message}")]
    WrongType { field: String, message: String },
    #[error("{field}: must not be empty")]
    Empty { field: String },
    #[error("{field}: {value:?} is used more than once")]
    Duplicate { field: String, value: String },
    #[error("{field}: {value:?} is not one of {expected}")]
    NotOneOf {
        field: String,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{field}: unknown field type {value:?}; expected one of text, number, email, url, \
         textarea, select, checkbox, date, time, datetime, range, password"
    )]
    UnknownFieldType { field: String, value: String },
    #[error("{field}: must start with a letter and hold only letters, digits, _ or -")]
    InvalidFieldName { field: String },
    #[error("{field}: a select field needs at least one option")]
    SelectWithoutOptions { field: String },
    #[error("{field}: only select fields take options")]
    OptionsNotAllowed { field: String },
    #[error("{field}: {field_type} fields take no min or max")]
    BoundsNotAllowed {
        field: String,
        field_type: &'static str,
    },
    #[error("{field}: a length cannot be negative")]
    NegativeLength { field: String },
    #[error("{field}: min {min} is greater than max {max}")]
    MinAboveMax { field: String, min: f64, max: f64 },
    #[error("{field}: its credential key {key} is also {other}'s")]
    CredentialKeyClash {
        field: String,
        other: String,
        key: String,
    },
    #[error("prefill: {actual} characters, more than maxLength {max}")]
    PrefillTooLong { actual: usize, max: u32 },
    #[error("timeoutS: must be at least 1 second")]
    TimeoutZero,
    #[error("timeoutS: {value} s is beyond the maximum of {MAX_REVIEW_TIMEOUT_S} s (36 h)")]
    TimeoutTooLong { value: u64 },
}

impl ReviewArgsError {
    /// The argument path at fault (`""` for an unknown tool).
    pub fn field(&self) -> &str {
        match self {
            Self::UnknownTool(_) => "",
            Self::PrefillTooLong { .. } => "prefill",
            Self::TimeoutZero | Self::TimeoutTooLong { .. } => "timeoutS",
            Self::NotAnObject { field }
            | Self::UnknownArgument { field }
            | Self::Missing { field }
            | Self::WrongType { field, .. }
            | Self::Empty { field }
            | Self::Duplicate { field, .. }
            | Self::NotOneOf { field, .. }
            | Self::UnknownFieldType { field, .. }
            | Self::InvalidFieldName { field }
            | Self::SelectWithoutOptions { field }
            | Self::OptionsNotAllowed { field }
            | Self::BoundsNotAllowed { field, .. }
            | Self::NegativeLength { field }
            | Self::MinAboveMax { field, .. }
            | Self::CredentialKeyClash { field, .. } => field,
        }
    }
}

impl From<ReviewArgsError> for ToolError {
    fn from(e: ReviewArgsError) -> Self {
        let kind = match e {
            ReviewArgsError::UnknownTool(_) => ToolErrorKind::UnknownTool,
            _ => ToolErrorKind::InvalidArguments,
        };
        ToolError::new(kind, e.to_string())
            .with_hint("fix the named argument and call the tool again; no review was opened")
    }
}
