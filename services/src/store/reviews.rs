//! Review (approval gate) rows as the store keeps them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{RunId, SessionKey, TenantId};
use crate::review::{ReviewId, ReviewOutcome, ReviewRequest};

/// Where a review stands. Only `Pending` may change, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Decided,
    Expired,
    Cancelled,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Decided => "decided",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "decided" => Self::Decided,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// The closed status an outcome leads to.
    pub fn of(outcome: &ReviewOutcome) -> Self {
        match outcome {
            ReviewOutcome::Decided { .. } => Self::Decided,
            ReviewOutcome::TimedOut => Self::Expired,
            ReviewOutcome::Cancelled => Self::Cancelled,
        }
    }
}

/// A review to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReview {
    pub id: ReviewId,
    pub session_key: SessionKey,
    pub run_id: RunId,
    /// The tool call the review gates (or the HITL tool call that asked).
    pub call_id: String,
    pub tool: String,
    /// Who started the turn (`interactive`, `api`, `sdk`, `cron`, `a2a`).
    pub origin: String,
    pub request: ReviewRequest,
    /// What a reviewer needs to decide: arguments, the policy's reason, recent messages.
    pub context: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

/// A stored review.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRecord {
    pub tenant: TenantId,
    pub id: ReviewId,
    pub session_key: SessionKey,
    pub run_id: RunId,
    pub call_id: String,
    pub tool: String,
    pub origin: String,
    pub request: ReviewRequest,
    pub context: serde_json::Value,
    pub status: ReviewStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub outcome: Option<ReviewOutcome>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Which reviews to list (newest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewFilter {
    pub status: Option<ReviewStatus>,
    pub session_key: Option<SessionKey>,
    pub run_id: Option<RunId>,
    pub limit: Option<u32>,
}
