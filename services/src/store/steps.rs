//! The write path of a turn, shaped around a session and its steps rather than rows.
//! Each step (accept, model reply, tool call started, tool call finished, turn
//! finished) is recorded in one transaction together with its audit events, so
//! after any crash the store holds a whole step or none of it: a call whose finish
//! was recorded also has its result message, and an accepted turn has its run row,
//! its user message and its `turn_started` event.

use async_trait::async_trait;

use crate::domain::{ChatMessage, RunId, SessionKey, TenantId, Usage};
use crate::review::{ReviewId, ReviewOutcome};
use crate::store::{
    AuditEventKind, Epoch, NewReview, ReviewRecord, RunStatus, StoreError, ToolCallStatus,
};

/// The run a step belongs to, who writes it (the audit event's actor) and the epoch
/// of the session lease its writer holds: a step whose epoch is no longer the
/// session's writes nothing and fails with [`StoreError::Fenced`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScope {
    pub tenant: TenantId,
    pub session_key: SessionKey,
    pub run_id: RunId,
    pub actor: String,
    pub epoch: Epoch,
}

/// An audit event of a step; its tenant, session and run come from the [`RunScope`].
#[derive(Debug, Clone, PartialEq)]
pub struct StepEvent {
    pub kind: AuditEventKind,
    pub data: serde_json::Value,
}

impl StepEvent {
    pub fn new(kind: AuditEventKind, data: serde_json::Value) -> Self {
        Self { kind, data }
    }
}

/// A turn was accepted: its session (created if missing), its run (`running`, with
/// the input as given), the user's message and the `turn_started` event.
#[derive(Debug, Clone)]
pub struct AcceptStep {
    pub input: String,
    pub user: ChatMessage,
    pub event: StepEvent,
}

/// A turn was accepted for a session that is busy: its run (`queued`, with the
/// input as given) and the `turn_queued` event, so the caller can be acknowledged
/// before the turn starts. Its accept step later moves the run to `running`.
#[derive(Debug, Clone)]
pub struct QueuedStep {
    pub input: String,
    pub event: StepEvent,
}

/// What one model call spent.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpend {
    /// The model the cost is priced under.
    pub model: String,
    pub usage: Usage,
    pub cost_micros: u64,
}

/// The model replied: its usage row, the assistant message (with the runtime's call
/// ids) and the `model_call` event.
#[derive(Debug, Clone)]
pub struct ModelReplyStep {
    pub spend: ModelSpend,
    pub message: ChatMessage,
    pub event: StepEvent,
}

/// A tool call is on record as started before it can have any effect.
#[derive(Debug, Clone)]
pub struct ToolStartedStep {
    pub call_id: String,
    pub tool: String,
    pub arguments: String,
    pub event: Option<StepEvent>,
}

/// A tool call ended (ran, was refused, answered by a human or stopped): its row's
/// status and result, the result message the model reads, and its events
/// (`credential_read` when it read credentials, then `tool_call` or `tool_denied`).
#[derive(Debug, Clone)]
pub struct ToolFinishedStep {
    pub call_id: String,
    pub status: ToolCallStatus,
    pub result: String,
    pub message: ChatMessage,
    pub events: Vec<StepEvent>,
}

/// The runtime said something itself (e.g. the turn reached its budget): the
/// assistant message and its event.
#[derive(Debug, Clone)]
pub struct NoteStep {
    pub message: ChatMessage,
    pub event: StepEvent,
}

/// The turn ended: the run's final status, content and usage, and `turn_finished`.
#[derive(Debug, Clone)]
pub struct TurnFinishedStep {
    pub status: RunStatus,
    pub content: Option<String>,
    pub usage: Usage,
    pub event: StepEvent,
}

/// A gate opened: the pending review, its run moved to `awaiting_review` (when it is
/// running) and its events (`review_requested`, `review_delivered`).
#[derive(Debug, Clone)]
pub struct GateOpenedStep {
    pub review: NewReview,
    pub events: Vec<StepEvent>,
}

/// The audit event of a closed gate, made from the review as it closed.
pub type GateClosedEvent = Box<dyn FnOnce(&ReviewRecord) -> StepEvent + Send>;

/// A gate closed (decided, expired or withdrawn): the review's status and outcome and
/// its event, written by `actor`.
pub struct GateClosedStep {
    pub review_id: ReviewId,
    pub outcome: ReviewOutcome,
    pub actor: String,
    pub event: GateClosedEvent,
}

/// Records a session's steps, each atomically with its audit events.
#[async_trait]
pub trait SessionLog: Send + Sync {
    /// [`StoreError::Conflict`] if the run exists already (unless it was queued: its
    /// accept moves it from `queued` to `running`).
    async fn record_accept(&self, run: &RunScope, step: AcceptStep) -> Result<(), StoreError>;
    /// [`StoreError::Conflict`] if the run exists already.
    async fn record_queued(&self, run: &RunScope, step: QueuedStep) -> Result<(), StoreError>;
    /// Records a turn given to a session by something other than its holder (a
    /// scheduled job firing): its run as `queued` and its `turn_queued` event by
    /// `actor`, in one step under whatever lease the session has (none is needed; the
    /// event records the current epoch). The holder takes the run when told, or when
    /// a sweep finds it. `false`, writing nothing, when a run of that id exists: it
    /// was given before.
    async fn enqueue_turn(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        run_id: &RunId,
        actor: &str,
        step: QueuedStep,
    ) -> Result<bool, StoreError>;
    async fn record_model_reply(
        &self,
        run: &RunScope,
        step: ModelReplyStep,
    ) -> Result<(), StoreError>;
    async fn record_note(&self, run: &RunScope, step: NoteStep) -> Result<(), StoreError>;
    /// [`StoreError::NotFound`] if the run does not exist.
    async fn record_tool_started(
        &self,
        run: &RunScope,
        step: ToolStartedStep,
    ) -> Result<(), StoreError>;
    /// [`StoreError::Conflict`] if the call is not in progress.
    async fn record_tool_finished(
        &self,
        run: &RunScope,
        step: ToolFinishedStep,
    ) -> Result<(), StoreError>;
    /// [`StoreError::Conflict`] if the run is not running (or `status` is running).
    async fn record_turn_finished(
        &self,
        run: &RunScope,
        step: TurnFinishedStep,
    ) -> Result<(), StoreError>;
    /// [`StoreError::NotFound`] if the run does not exist.
    async fn record_gate_opened(
        &self,
        run: &RunScope,
        step: GateOpenedStep,
    ) -> Result<ReviewRecord, StoreError>;
    /// Closes a pending review exactly once: [`StoreError::Conflict`] if it is
    /// already closed, [`StoreError::NotFound`] if there is none.
    async fn record_gate_closed(
        &self,
        tenant: &TenantId,
        step: GateClosedStep,
    ) -> Result<ReviewRecord, StoreError>;
}

/// Store work since it was opened: commits (transactions that reached the disk, a
/// group commit counting once), writes (steps and other units of work, each atomic
/// on its own) and reads. The load test divides them by turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCounts {
    pub commits: u64,
    pub writes: u64,
    pub reads: u64,
    /// Writes waiting for the writer now (SQLite's single writer; 0 on PostgreSQL,
    /// where each write has its own connection).
    pub queued: u64,
}

/// Counts of the store's work.
pub trait StoreMetrics: Send + Sync {
    fn counts(&self) -> StoreCounts;
}
