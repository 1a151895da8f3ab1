//! What a turn reports to whoever submitted it.

use facio_services::domain::{ChatMessage, RunId, SessionKey, ToolCall, Usage};
use facio_services::review::ReviewId;
use facio_services::store::RunStatus;
use serde::Serialize;

pub use crate::origin::Origin;

/// Progress of a turn, in order; `Finished` is always last.
#[derive(Debug, Clone)]
pub enum TurnEvent {
    /// Assistant text as the model streams it.
    TextDelta(String),
    /// A tool call is about to run.
    ToolStarted(ToolCall),
    /// A tool call finished (successfully or not).
    ToolFinished(ToolUse),
    /// The turn stopped at a human review (the run continues once it is decided).
    ReviewPending {
        review_id: ReviewId,
        title: String,
    },
    Finished(Box<TurnSummary>),
}

/// A tool call as the caller sees it afterwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    pub call_id: String,
    pub name: String,
    pub arguments: String,
    pub ok: bool,
    /// What the model received (output or the structured error).
    pub output: String,
}

/// Why a turn ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum StopReason {
    /// The model gave a final answer.
    Answered,
    /// The iteration budget ran out; the content explains it.
    BudgetExhausted { limit: u32 },
    /// A token budget ran out (the run's cap, or the tenant's daily or monthly
    /// budget); the content explains it.
    TokenBudgetExhausted {
        scope: super::BudgetScope,
        limit: u64,
    },
    /// Cancelled by a caller.
    Cancelled,
    /// The node shut down mid-turn; progress so far is stored.
    Interrupted,
    /// The model provider failed after retries.
    ProviderFailed(String),
    /// The tenant's settings do not allow the configured model.
    ModelNotAllowed(String),
    /// The runtime itself failed (store unavailable, ...).
    Internal(String),
    /// Another owner took the session's lease: this node wrote nothing more of the
    /// turn, and the new owner continues it from the store.
    Fenced(String),
    /// A tool call needs a human: the turn waits, holding no task, until the review
    /// closes and the session resumes it.
    AwaitingReview { review_id: ReviewId },
}

impl StopReason {
    /// The reason's name (`answered`, `awaiting_review`, …), as it is serialized.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::BudgetExhausted { .. } => "budget_exhausted",
            Self::TokenBudgetExhausted { .. } => "token_budget_exhausted",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::ProviderFailed(_) => "provider_failed",
            Self::ModelNotAllowed(_) => "model_not_allowed",
            Self::Internal(_) => "internal",
            Self::Fenced(_) => "fenced",
            Self::AwaitingReview { .. } => "awaiting_review",
        }
    }

    pub fn run_status(&self) -> RunStatus {
        match self {
            Self::Answered | Self::BudgetExhausted { .. } | Self::TokenBudgetExhausted { .. } => {
                RunStatus::Completed
            }
            Self::Cancelled => RunStatus::Cancelled,
            Self::Interrupted => RunStatus::Interrupted,
            Self::ProviderFailed(_) | Self::ModelNotAllowed(_) | Self::Internal(_) => {
                RunStatus::Failed
            }
            Self::AwaitingReview { .. } => RunStatus::AwaitingReview,
            // As far as this node knows: the run goes on under the session's new owner.
            Self::Fenced(_) => RunStatus::Running,
        }
    }
}

/// The outcome of a turn.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnSummary {
    pub run_id: RunId,
    pub session_key: SessionKey,
    pub stop: StopReason,
    /// The final assistant text (or the budget message).
    pub content: Option<String>,
    pub usage: Usage,
    pub tools_used: Vec<ToolUse>,
    /// Every message this turn added to the session, in order.
    pub messages: Vec<ChatMessage>,
    /// The model id that answered.
    pub model: String,
}
