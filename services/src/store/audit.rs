//! Audit events and the hash chain that makes tampering detectable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{RunId, SessionKey, TenantId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditEventKind {
    TurnStarted,
    /// A turn was accepted for a busy session and waits behind its other turns.
    TurnQueued,
    ModelCall,
    ToolCall,
    ToolDenied,
    Error,
    TurnFinished,
    BudgetExhausted,
    /// A human review was opened (what, why, payload).
    ReviewRequested,
    /// A review was delivered to a surface (inbox, Placet, ...).
    ReviewDelivered,
    /// A human decided a review (who, decision, comment, latency).
    ReviewDecided,
    /// A review timed out; the configured action applied.
    ReviewExpired,
    /// A review was withdrawn before anyone answered.
    ReviewCancelled,
    /// A credential was stored, changed or deleted (its key only, never its value).
    CredentialChanged,
    /// A credential was read or used (its key only, never its value).
    CredentialRead,
    /// Settings changed through the management API (tenant settings, ...).
    SettingsChanged,
    /// A session and its history were deleted.
    SessionDeleted,
    /// A workspace file was written or deleted through the management API.
    WorkspaceChanged,
    /// A bearer token was issued (its jti, subject, roles and expiry; never the token).
    TokenIssued,
    /// A bearer token was revoked (its jti).
    TokenRevoked,
    /// The tenant's policy changed: a rule added or removed, all rules cleared, or a
    /// setting (`enabled`, `skipCron`) changed, with what it was before.
    PolicyChanged,
    /// A tenant was created (recorded in the system tenant's log and the new one's).
    TenantCreated,
    /// A session's running, queued or waiting turns were stopped by a command.
    SessionStopped,
    /// A tenant's MCP server was added, replaced, removed, enabled, disabled or
    /// restarted.
    McpServerChanged,
    /// A tenant's A2A peer was added, refreshed or removed.
    A2aPeerChanged,
    /// A message came in through a channel (accepted as a turn, or refused).
    ChannelMessage,
    /// A channel delivered a message out, or gave up on it (a dead letter).
    ChannelDelivery,
    /// A tenant's channel was added, replaced or removed.
    ChannelChanged,
    /// A tenant's scheduled job was added, changed, paused, resumed, removed or run
    /// by hand.
    CronJobChanged,
}

impl AuditEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TurnStarted => "turn_started",
            Self::TurnQueued => "turn_queued",
            Self::ModelCall => "model_call",
            Self::ToolCall => "tool_call",
            Self::ToolDenied => "tool_denied",
            Self::Error => "error",
            Self::TurnFinished => "turn_finished",
            Self::BudgetExhausted => "budget_exhausted",
            Self::ReviewRequested => "review_requested",
            Self::ReviewDelivered => "review_delivered",
            Self::ReviewDecided => "review_decided",
            Self::ReviewExpired => "review_expired",
            Self::ReviewCancelled => "review_cancelled",
            Self::CredentialChanged => "credential_changed",
            Self::CredentialRead => "credential_read",
            Self::SettingsChanged => "settings_changed",
            Self::SessionDeleted => "session_deleted",
            Self::WorkspaceChanged => "workspace_changed",
            Self::TokenIssued => "token_issued",
            Self::TokenRevoked => "token_revoked",
            Self::PolicyChanged => "policy_changed",
            Self::TenantCreated => "tenant_created",
            Self::SessionStopped => "session_stopped",
            Self::McpServerChanged => "mcp_server_changed",
            Self::A2aPeerChanged => "a2a_peer_changed",
            Self::ChannelMessage => "channel_message",
            Self::ChannelDelivery => "channel_delivery",
            Self::ChannelChanged => "channel_changed",
            Self::CronJobChanged => "cron_job_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "turn_started" => Self::TurnStarted,
            "turn_queued" => Self::TurnQueued,
            "model_call" => Self::ModelCall,
            "tool_call" => Self::ToolCall,
            "tool_denied" => Self::ToolDenied,
            "error" => Self::Error,
            "turn_finished" => Self::TurnFinished,
            "budget_exhausted" => Self::BudgetExhausted,
            "review_requested" => Self::ReviewRequested,
            "review_delivered" => Self::ReviewDelivered,
            "review_decided" => Self::ReviewDecided,
            "review_expired" => Self::ReviewExpired,
            "review_cancelled" => Self::ReviewCancelled,
            "credential_changed" => Self::CredentialChanged,
            "credential_read" => Self::CredentialRead,
            "settings_changed" => Self::SettingsChanged,
            "session_deleted" => Self::SessionDeleted,
            "workspace_changed" => Self::WorkspaceChanged,
            "token_issued" => Self::TokenIssued,
            "token_revoked" => Self::TokenRevoked,
            "policy_changed" => Self::PolicyChanged,
            "tenant_created" => Self::TenantCreated,
            "session_stopped" => Self::SessionStopped,
            "mcp_server_changed" => Self::McpServerChanged,
            "a2a_peer_changed" => Self::A2aPeerChanged,
            "channel_message" => Self::ChannelMessage,
            "channel_delivery" => Self::ChannelDelivery,
            "channel_changed" => Self::ChannelChanged,
            "cron_job_changed" => Self::CronJobChanged,
            _ => return None,
        })
    }
}

/// An event to append (carried to another node with a change it records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAuditEvent {
    pub kind: AuditEventKind,
    pub session_key: Option<SessionKey>,
    pub run_id: Option<RunId>,
    /// Who caused it (`agent`, `system`, a user id).
    pub actor: String,
    /// Event details; must not contain secrets.
    pub data: serde_json::Value,
}

/// A stored event. `hash` = SHA-256 over `prev_hash` and the canonical event fields.
///
/// Each event belongs to one chain: its session's (or, without a session, the
/// tenant's chain of events outside sessions), and `prev_hash` is the hash of the
/// chain's previous event. Events written before chains were per session (`chain_seq`
/// is `None`) form one chain per tenant, in `seq` order.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Orders the tenant's listing: unique and increasing, not gap-free.
    pub seq: i64,
    /// Position in its chain, from 1 (`None` for an event of the older tenant chain).
    pub chain_seq: Option<i64>,
    /// The session lease's epoch the event was written under (`None` outside a step).
    pub epoch: Option<i64>,
    /// The newest checkpoint of the tenant its writer saw (0 for none yet).
    pub seen_checkpoint: Option<i64>,
    pub tenant: TenantId,
    pub kind: AuditEventKind,
    pub session_key: Option<SessionKey>,
    pub run_id: Option<RunId>,
    pub actor: String,
    /// What the kind of event records (its fields depend on the kind).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

/// Filter for listing events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub run_id: Option<RunId>,
    pub session_key: Option<SessionKey>,
    pub kind: Option<AuditEventKind>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
    /// Any of these kinds (besides `kind`, when both are given).
    pub kinds: Vec<AuditEventKind>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Events whose data contains this text (as stored: compact JSON).
    pub text: Option<String>,
    /// Events after this seq, oldest first: the next page of a search.
    pub after: Option<i64>,
}

/// Result of recomputing a tenant's chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditChainReport {
    pub tenant: TenantId,
    pub events_checked: i64,
    /// Chains checked: one per session, one for events outside sessions, and the
    /// older tenant-wide chain when there is one.
    pub chains: i64,
    /// Events not yet named by a checkpoint (the newest ones; sealed when their turn
    /// ends, or by the next periodic seal).
    pub unsealed: i64,
    /// The first event whose stored hash or link does not match, with the reason.
    pub first_broken: Option<(i64, String)>,
    pub checkpoints_checked: i64,
    /// Whether seals were checked (the store has the audit key).
    pub sealed: bool,
    /// The newest checkpoint as `seq:mac`: keep it to detect a rollback later.
    pub anchor: Option<String>,
}

/// The hash of the genesis link of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Computes an event's hash from the previous hash and its fields. Timestamps are
/// hashed as RFC 3339 with microseconds so the text round-trips through both backends.
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    tenant: &TenantId,
    kind: AuditEventKind,
    session_key: Option<&SessionKey>,
    run_id: Option<&RunId>,
    actor: &str,
    data: &serde_json::Value,
    created_at: &DateTime<Utc>,
) -> String {
    let canonical = serde_json::json!([
        seq,
        tenant.as_str(),
        kind.as_str(),
        session_key.map(SessionKey::as_str),
        run_id.map(RunId::as_str),
        actor,
        data,
        created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    ]);
    hash_after(prev_hash, &canonical)
}

/// SHA-256 over the previous hash, a newline and the canonical fields' JSON.
fn hash_after(prev_hash: &str, canonical: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

impl NewAuditEvent {
    /// The name of the event's chain: its session key, or "" outside sessions.
    pub fn chain(&self) -> &str {
        self.session_key.as_ref().map_or("", SessionKey::as_str)
    }
}

impl AuditEvent {
    /// The name of the event's chain: its session key, or "" outside sessions.
    pub fn chain(&self) -> &str {
        self.session_key.as_ref().map_or("", SessionKey::as_str)
    }

    /// The hash the event's fields give after `prev_hash`: for an event of a
    /// per-session chain, over "v2", tenant, session, its place in the chain (`chain_seq`,
    /// `epoch`, `seen_checkpoint`) and the event; for one of the older tenant-wide
    /// chain, [`chain_hash`] over its `seq` and the event.
    pub fn expected_hash(&self, prev_hash: &str) -> String {
        let Some(chain_seq) = self.chain_seq else {
            return chain_hash(
                prev_hash,
                self.seq,
                &self.tenant,
                self.kind,
                self.session_key.as_ref(),
                self.run_id.as_ref(),
                &self.actor,
                &self.data,
                &self.created_at,
            );
        };
        let canonical = serde_json::json!([
            "v2",
            self.tenant.as_str(),
            self.session_key.as_ref().map(SessionKey::as_str),
            chain_seq,
            self.epoch,
            self.seen_checkpoint.unwrap_or(0),
            self.kind.as_str(),
            self.run_id.as_ref().map(RunId::as_str),
            self.actor,
            self.data,
            self.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ]);
        hash_after(prev_hash, &canonical)
    }
}
