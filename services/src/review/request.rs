//! A review as Facio opens it (`ReviewRequest`) and as Placet receives it (`Review`).

use serde::{Deserialize, Serialize};

use super::payload::{ReviewPayload, ReviewType};

/// How long a review waits for a human when the caller names no timeout (24 h).
pub const DEFAULT_REVIEW_TIMEOUT_S: u64 = 86_400;
/// The longest a review may wait (36 h): Placet refuses expiries further ahead.
pub const MAX_REVIEW_TIMEOUT_S: u64 = 129_600;

/// Placet's `review` object of a message:
/// `{"type": ..., "payload": {...}, "expiresInSeconds": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    #[serde(flatten)]
    pub payload: ReviewPayload,
    /// Absent means Placet's default (24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

impl Review {
    pub fn review_type(&self) -> ReviewType {
        self.payload.review_type()
    }
}

/// A validated request for human input, as a gate persists it and every review
/// surface renders it. Serializes as
/// `{"title", "description"?, "type", "payload", "timeoutS"}`.
///
/// The type is not stored beside the payload: the payload's variant is the type, so
/// the two cannot disagree (`review_type()` reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRequest {
    /// One line the reviewer sees first.
    pub title: String,
    /// Markdown context: what is being decided and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub payload: ReviewPayload,
    /// Seconds the review waits for a human before it times out (at most
    /// [`MAX_REVIEW_TIMEOUT_S`]).
    pub timeout_s: u64,
}

impl ReviewRequest {
    pub fn review_type(&self) -> ReviewType {
        self.payload.review_type()
    }

    /// The body Placet's `review` field takes.
    pub fn to_placet_review(&self) -> Review {
        Review {
            payload: self.payload.clone(),
            expires_in_seconds: Some(self.timeout_s),
        }
    }

    /// The markdown message text shown above the review controls: the title in bold,
    /// then the description.
    pub fn message_text(&self) -> String {
        match self.description.as_deref().map(str::trim) {
            Some(description) if !description.is_empty() => {
                format!("**{}**\n\n{description}", self.title.trim())
            }
            _ => format!("**{}**", self.title.trim()),
        }
    }
}
