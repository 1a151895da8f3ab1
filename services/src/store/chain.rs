//! The audit chains' pure logic, shared by the backends: the link that follows a
//! session chain's head and reading a stored event back (the check of a stored chain is
//! [`crate::store::check_chain`]). A backend only reads and writes rows.

use chrono::{DateTime, Utc};

use super::{
    AuditEvent, AuditEventKind, ChainHead, NewAuditEvent, RunScope, StepEvent, StoreError,
    parse_heads,
};
use crate::domain::TenantId;

/// The audit event a step writes: its tenant, session and run from the scope.
pub(crate) fn step_audit_event(run: &RunScope, event: StepEvent) -> NewAuditEvent {
    NewAuditEvent {
        kind: event.kind,
        session_key: Some(run.session_key.clone()),
        run_id: Some(run.run_id.clone()),
        actor: run.actor.clone(),
        data: event.data,
    }
}

/// The event that follows `head` (its chain's newest `chain_seq` and hash; 0 and the
/// genesis hash for a new chain), written under `epoch` by a writer that saw
/// checkpoint `seen_checkpoint`, hashed. Its `seq` is the store's to assign (0 here).
pub(crate) fn next_link(
    head: (i64, String),
    seen_checkpoint: i64,
    epoch: Option<i64>,
    tenant: &TenantId,
    event: NewAuditEvent,
    created_at: DateTime<Utc>,
) -> AuditEvent {
    let (head_seq, prev_hash) = head;
    let mut linked = AuditEvent {
        seq: 0,
        chain_seq: Some(head_seq + 1),
        epoch,
        seen_checkpoint: Some(seen_checkpoint),
        tenant: tenant.clone(),
        kind: event.kind,
        session_key: event.session_key,
        run_id: event.run_id,
        actor: event.actor,
        data: event.data,
        created_at,
        prev_hash,
        hash: String::new(),
    };
    linked.hash = linked.expected_hash(&linked.prev_hash);
    linked
}

/// A stored checkpoint's `heads` column read back (`None` for an older checkpoint).
pub(crate) fn stored_heads(
    seq: i64,
    heads: Option<String>,
) -> Result<Option<Vec<ChainHead>>, StoreError> {
    heads
        .map(|text| parse_heads(&text))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("audit checkpoint {seq}: heads: {e}")))
}

/// A stored event's columns as text (JSON data as stored), read back into an event.
pub(crate) struct StoredEvent<'r> {
    pub seq: i64,
    pub chain_seq: Option<i64>,
    pub epoch: Option<i64>,
    pub seen_checkpoint: Option<i64>,
    pub tenant: &'r str,
    pub kind: &'r str,
    pub session_key: Option<&'r str>,
    pub run_id: Option<&'r str>,
    pub actor: String,
    pub data: &'r str,
    pub created_at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEvent<'_> {
    pub(crate) fn into_event(self) -> Result<AuditEvent, StoreError> {
        let seq = self.seq;
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("audit event {seq}: {what}: {e}"))
        };
        Ok(AuditEvent {
            seq,
            chain_seq: self.chain_seq,
            epoch: self.epoch,
            seen_checkpoint: self.seen_checkpoint,
            tenant: self.tenant.parse().map_err(|e| corrupt("tenant_id", &e))?,
            kind: AuditEventKind::parse(self.kind).ok_or_else(|| {
                StoreError::Corrupt(format!("audit event {seq}: unknown kind {:?}", self.kind))
            })?,
            session_key: self
                .session_key
                .map(str::parse)
                .transpose()
                .map_err(|e| corrupt("session_key", &e))?,
            run_id: self
                .run_id
                .map(str::parse)
                .transpose()
                .map_err(|e| corrupt("run_id", &e))?,
            actor: self.actor,
            data: serde_json::from_str(self.data).map_err(|e| corrupt("data", &e))?,
            created_at: self.created_at,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}
