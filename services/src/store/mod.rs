//! The store: repository traits (sessions, messages, runs, tool calls, audit) and
//! their two implementations, SQLite (embedded) and PostgreSQL (shared by a cluster),
//! chosen by `storage.url` through [`open_store`]. A turn writes through
//! [`SessionLog`], one transaction per step with its audit events, fenced by the
//! session's [`Lease`] epoch; the repository
//! methods serve management reads and writes. Every method takes a [`TenantId`], so
//! an unscoped query cannot be written (and on PostgreSQL, row-level security refuses
//! one). Both backends' migrations are kept in step, file for file.

mod audit;
mod chain;
mod change;
#[cfg(test)]
mod conformance;
mod error;
mod export;
mod leases;
mod lock;
mod open;
mod postgres;
mod records;
mod reviews;
mod seal;
mod sqlite;
mod steps;
mod tokens;
mod usage;

use async_trait::async_trait;

use crate::domain::{ChatMessage, RunId, SessionKey, TenantId, TenantSettings, Usage};
use crate::review::{ReviewId, ReviewOutcome};
use crate::vault::Sealed;

pub use audit::{
    AuditChainReport, AuditEvent, AuditEventKind, AuditFilter, GENESIS_HASH, NewAuditEvent,
    chain_hash,
};
pub use change::{Applied, Change, ChangeRepository, Recorded};
pub use error::StoreError;
pub use export::{ExportError, ExportReport, verify_export};
pub use leases::{Epoch, Lease, LeaseRepository};
pub use lock::{DataDirLock, DataDirLockError};
pub use open::{Backend, MigrationReport, migrate_store, open_store, redact_url};
pub use postgres::PostgresStore;
pub use records::{
    RunFilter, RunRecord, RunStatus, SessionRecord, StoredMessage, ToolCallRecord, ToolCallStatus,
};
pub use reviews::{NewReview, ReviewFilter, ReviewRecord, ReviewStatus};
pub use seal::{
    AuditCheckpoint, AuditKey, ChainCheck, ChainHead, CheckpointBody, SealedEvent, check_chain,
    heads_text, parse_heads,
};
pub use sqlite::SqliteStore;
pub use steps::{
    AcceptStep, GateClosedEvent, GateClosedStep, GateOpenedStep, ModelReplyStep, ModelSpend,
    NoteStep, QueuedStep, RunScope, SessionLog, StepEvent, StoreCounts, StoreMetrics,
    ToolFinishedStep, ToolStartedStep, TurnFinishedStep,
};
pub use tokens::{TokenRecord, TokenRepository};
pub use usage::{
    BudgetPeriod, NewUsage, PeriodBudget, UsageGroup, UsageGrouping, UsageRecord, UsageTotals,
    UsageWindow, period_budgets,
};

/// Sessions and their message history.
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Creates the session if it does not exist; returns it either way.
    async fn ensure_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<SessionRecord, StoreError>;
    async fn get_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Sessions, most recently active first.
    async fn list_sessions(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// Appends messages atomically (all or none), returning their sequence numbers.
    async fn append_messages(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        run: Option<&RunId>,
        messages: &[ChatMessage],
    ) -> Result<Vec<i64>, StoreError>;
    /// The full history in order.
    async fn history(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    /// Deletes the session with its history, runs, tool calls and reviews, all or
    /// nothing. The audit log and usage rows stay. [`StoreError::Conflict`] while a
    /// run of the session is running or awaiting a review; false if there was none.
    /// `record`, the audit event of the deletion, is written in the same transaction
    /// when there was a session to delete.
    async fn delete_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        record: Option<NewAuditEvent>,
    ) -> Result<bool, StoreError>;
}

/// Runs (one per turn) and their tool calls.
#[async_trait]
pub trait RunRepository: Send + Sync {
    async fn create_run(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        run: &RunId,
        input: &str,
    ) -> Result<RunRecord, StoreError>;
    async fn get_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Option<RunRecord>, StoreError>;
    /// Sets the final status, content and usage. Only a running run may finish.
    async fn finish_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
        status: RunStatus,
        content: Option<&str>,
        usage: Usage,
    ) -> Result<(), StoreError>;
    /// Moves a run between `running` and `awaiting_review`; false if it was not `from`.
    async fn set_run_status(
        &self,
        tenant: &TenantId,
        run: &RunId,
        from: RunStatus,
        to: RunStatus,
    ) -> Result<bool, StoreError>;
    /// Runs newest first, as `filter` says, with how many match it in all (without its
    /// `before` and `limit`).
    async fn list_runs(
        &self,
        tenant: &TenantId,
        filter: &RunFilter,
    ) -> Result<(Vec<RunRecord>, u64), StoreError>;
    /// Runs still `running` (after a crash: to mark them interrupted on start).
    async fn running_runs(&self, tenant: &TenantId) -> Result<Vec<RunRecord>, StoreError>;
    /// Runs accepted and still waiting to start, oldest first (to start them again
    /// after a restart).
    async fn queued_runs(&self, tenant: &TenantId) -> Result<Vec<RunRecord>, StoreError>;
    /// Runs stopped at a human review, oldest first, of one session or all (a review
    /// decided while nobody held its session leaves its run here until a node
    /// resumes it).
    async fn awaiting_runs(
        &self,
        tenant: &TenantId,
        key: Option<&SessionKey>,
    ) -> Result<Vec<RunRecord>, StoreError>;
    /// Runs stopped at a review that is no longer pending (decided, expired or
    /// withdrawn): each is due to resume, oldest first.
    async fn resumable_runs(&self, tenant: &TenantId) -> Result<Vec<RunRecord>, StoreError>;
    /// One session's runs still `queued` or `running`, oldest first (what a new owner
    /// of the session takes over).
    async fn unfinished_runs(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Vec<RunRecord>, StoreError>;
    async fn tool_call_started(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
        tool: &str,
        arguments: &str,
    ) -> Result<(), StoreError>;
    async fn tool_call_finished(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
        status: ToolCallStatus,
        result: &str,
    ) -> Result<(), StoreError>;
    async fn tool_calls(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Vec<ToolCallRecord>, StoreError>;
}

/// The append-only, hash-chained audit log (one chain per session).
#[async_trait]
pub trait AuditRepository: Send + Sync {
    /// Appends an event outside any step, chaining it to the previous event of its
    /// session (or of the tenant's events outside sessions), and seals it.
    async fn append_audit(
        &self,
        tenant: &TenantId,
        event: NewAuditEvent,
    ) -> Result<AuditEvent, StoreError>;
    async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, StoreError>;
    /// Recomputes the tenant's chain, checks its seals and checkpoints, and names the
    /// first broken event.
    async fn verify_audit(&self, tenant: &TenantId) -> Result<AuditChainReport, StoreError> {
        self.verify_audit_anchored(tenant, None).await
    }
    /// [`Self::verify_audit`], also requiring the checkpoint `anchor` (`seq:mac`, as
    /// an earlier verify printed it) to be there.
    async fn verify_audit_anchored(
        &self,
        tenant: &TenantId,
        anchor: Option<&str>,
    ) -> Result<AuditChainReport, StoreError>;
    /// Seals what is appended from now on with `key` (event MACs and checkpoints) and
    /// checks seals with it. Set once, when the vault has opened.
    fn set_audit_key(&self, key: AuditKey);
    /// Tenants that have audit events (for verifying every chain).
    async fn audit_tenants(&self) -> Result<Vec<TenantId>, StoreError>;
    /// Writes a checkpoint for every tenant whose chains moved since their last one
    /// (nothing without a key), and says how many it wrote. SQLite seals when each
    /// unit of work ends; PostgreSQL, where a per-write checkpoint would make every
    /// writer of a tenant wait on one another, seals on this call, which the runtime
    /// makes every second and at shutdown.
    async fn seal_audit(&self) -> Result<u64, StoreError>;
}

/// Human reviews (approval gates) and the operator policy that opens them.
#[async_trait]
pub trait ReviewRepository: Send + Sync {
    /// Persists a pending review (before it is delivered anywhere).
    async fn create_review(
        &self,
        tenant: &TenantId,
        review: NewReview,
    ) -> Result<ReviewRecord, StoreError>;
    async fn get_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
    ) -> Result<Option<ReviewRecord>, StoreError>;
    async fn list_reviews(
        &self,
        tenant: &TenantId,
        filter: &ReviewFilter,
    ) -> Result<Vec<ReviewRecord>, StoreError>;
    /// Closes a pending review with its outcome. A review that is already closed is
    /// a [`StoreError::Conflict`]: a decision is applied exactly once.
    async fn close_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
        outcome: &ReviewOutcome,
    ) -> Result<ReviewRecord, StoreError>;
    /// The latest review opened for a tool call of a run.
    async fn review_for_call(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
    ) -> Result<Option<ReviewRecord>, StoreError>;
    /// Pending reviews of every tenant (to re-arm their gates on start).
    async fn all_pending_reviews(&self) -> Result<Vec<ReviewRecord>, StoreError>;
    /// How many reviews of every tenant wait for a human (for the metrics).
    async fn count_pending_reviews(&self) -> Result<u64, StoreError>;
    /// The tenant's policy document, if one was saved.
    async fn get_policy(&self, tenant: &TenantId) -> Result<Option<serde_json::Value>, StoreError>;
}

/// Encrypted credentials (the vault's rows). Values only ever leave as ciphertext.
#[async_trait]
pub trait CredentialRepository: Send + Sync {
    async fn get_credential(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<(Sealed, bool)>, StoreError>;
    /// Credential keys, sorted.
    async fn credential_keys(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError>;
    /// Every credential of the tenant, sorted by key.
    async fn list_credentials(&self, tenant: &TenantId) -> Result<Vec<CredentialRow>, StoreError>;
    /// Any one stored credential of any tenant: the node checks at start that its
    /// master key opens it.
    async fn any_credential(&self) -> Result<Option<Sealed>, StoreError>;
}

/// A stored credential: its value only as ciphertext.
#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub key: String,
    pub sealed: Sealed,
    pub exposed: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// What each model call spent.
#[async_trait]
pub trait UsageRepository: Send + Sync {
    async fn record_usage(&self, tenant: &TenantId, usage: &NewUsage) -> Result<(), StoreError>;
    /// The sum over the window.
    async fn usage_totals(
        &self,
        tenant: &TenantId,
        window: &UsageWindow,
    ) -> Result<UsageTotals, StoreError>;
    /// Sums per group over the window, largest token count first.
    async fn usage_groups(
        &self,
        tenant: &TenantId,
        window: &UsageWindow,
        grouping: UsageGrouping,
    ) -> Result<Vec<UsageGroup>, StoreError>;
    /// The model calls of one run, in order.
    async fn run_usage(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Vec<UsageRecord>, StoreError>;
}

/// What a tenant connects its agents to, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationKind {
    /// An MCP server (`/api/v1/mcp`).
    McpServer,
    /// An A2A peer agent (`/api/v1/a2a/peers`).
    A2aPeer,
    /// A webhook channel (`/api/v1/channels`).
    Channel,
    /// A scheduled job (`/api/v1/cron`).
    CronJob,
}

impl IntegrationKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::McpServer => "mcp_server",
            Self::A2aPeer => "a2a_peer",
            Self::Channel => "channel",
            Self::CronJob => "cron_job",
        }
    }

    /// In a sentence: "an MCP server", "an A2A peer".
    pub fn described(self) -> &'static str {
        match self {
            Self::McpServer => "an MCP server",
            Self::A2aPeer => "an A2A peer",
            Self::Channel => "a channel",
            Self::CronJob => "a scheduled job",
        }
    }
}

/// A tenant's integrations of one kind, as stored: name and definition (JSON), oldest
/// first. Written through [`Change::PutIntegration`] and [`Change::DeleteIntegration`].
#[async_trait]
pub trait IntegrationRepository: Send + Sync {
    async fn integrations(
        &self,
        tenant: &TenantId,
        kind: IntegrationKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError>;

    /// Every tenant's integrations of one kind (the scheduler's jobs), by tenant and
    /// oldest first: one read across tenants.
    async fn all_integrations(
        &self,
        kind: IntegrationKind,
    ) -> Result<Vec<(TenantId, String, serde_json::Value)>, StoreError>;
}

/// Tenants. The default tenant exists without a row.
#[async_trait]
pub trait TenantRepository: Send + Sync {
    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError>;
    async fn list_tenants(&self) -> Result<Vec<TenantId>, StoreError>;
    /// The tenant's settings (defaults when none were saved).
    async fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError>;
}

/// Everything the runtime persists.
pub trait Store:
    SessionRepository
    + RunRepository
    + AuditRepository
    + ReviewRepository
    + CredentialRepository
    + TenantRepository
    + IntegrationRepository
    + ChangeRepository
    + UsageRepository
    + TokenRepository
    + LeaseRepository
    + SessionLog
    + StoreMetrics
{
}

impl<T> Store for T where
    T: SessionRepository
        + RunRepository
        + AuditRepository
        + ReviewRepository
        + CredentialRepository
        + TenantRepository
        + IntegrationRepository
        + ChangeRepository
        + UsageRepository
        + TokenRepository
        + LeaseRepository
        + SessionLog
        + StoreMetrics
{
}
