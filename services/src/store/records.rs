//! Rows as the store returns them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{ChatMessage, RunId, SessionKey, TenantId, Usage};

/// A session.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub tenant: TenantId,
    pub key: SessionKey,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub message_count: i64,
}

/// A stored message with its position in the session.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    pub seq: i64,
    pub run_id: Option<RunId>,
    /// The message as the chat-completions wire has it (`role`, `content`,
    /// `tool_calls`, `tool_call_id`).
    #[schema(value_type = Object)]
    pub message: ChatMessage,
    pub created_at: DateTime<Utc>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted and stored, waiting behind another turn of its session.
    Queued,
    Running,
    /// Stopped at a human review; resumes when the review closes.
    AwaitingReview,
    Completed,
    Failed,
    Cancelled,
    /// The process stopped while the run was in progress; recorded on the next start.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::AwaitingReview => "awaiting_review",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "awaiting_review" => Self::AwaitingReview,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "interrupted" => Self::Interrupted,
            _ => return None,
        })
    }
}

/// Which runs [`super::RunRepository::list_runs`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Of this session only.
    pub session_key: Option<SessionKey>,
    /// In one of these states (none: any).
    pub statuses: Vec<RunStatus>,
    /// Older than this run (the previous page's last): run ids order by creation.
    pub before: Option<RunId>,
    /// At most this many.
    pub limit: u32,
}

/// One turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub tenant: TenantId,
    pub run_id: RunId,
    pub session_key: SessionKey,
    pub status: RunStatus,
    pub input: String,
    pub content: Option<String>,
    pub usage: Usage,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a tool call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    Started,
    Succeeded,
    Failed,
    Denied,
    /// Never ran: the run was stopped first.
    Cancelled,
}

impl ToolCallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "started" => Self::Started,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "denied" => Self::Denied,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// One tool call of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallRecord {
    pub run_id: RunId,
    pub call_id: String,
    pub tool: String,
    pub arguments: String,
    pub status: ToolCallStatus,
    pub result: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
