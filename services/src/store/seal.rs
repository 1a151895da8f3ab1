//! The keyed seal over the audit chain: a MAC on every event and signed checkpoints.
//!
//! The hash chain alone catches an event changed, reordered or removed inside the
//! chain, but someone with write access to the database can drop the triggers,
//! rewrite events and recompute every hash, or cut events off the end. So each event
//! also carries `mac = HMAC-SHA256(audit key, hash)`, and the store writes a
//! checkpoint whenever a unit of work ends (a turn, a gate opening, a management
//! change): the tenant's head (seq and hash) at that moment, linked to the previous
//! checkpoint and sealed with the same key. The audit key is derived from the master
//! key, which the database never holds, so neither a recomputed event nor a forged
//! checkpoint verifies; and since every checkpoint names an event that must exist,
//! deleting the newest events, or all of them, is found too. What remains undetectable
//! from the database alone is rolling back both events and checkpoints to an earlier
//! state; `facio audit verify` prints the newest checkpoint so it can be kept
//! elsewhere and compared (`--anchor`).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::TenantId;
use crate::store::{AuditEvent, GENESIS_HASH, chain_hash};

/// The key that seals the audit log (derived from the master key).
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey([REDACTED])")
    }
}

impl AuditKey {
    /// Derives the audit key from the master key (HMAC-SHA256 under the master key
    /// of a fixed label), so it never equals the key that encrypts credentials.
    pub fn derive(master_key: &[u8]) -> Self {
        Self(tag(master_key, &[b"facio audit seal v1"]))
    }

    fn tag(&self, parts: &[&[u8]]) -> String {
        hex::encode(tag(&self.0, parts))
    }

    /// The MAC of an event, over its chain hash.
    pub fn event_mac(&self, hash: &str) -> String {
        self.tag(&[b"event\n", hash.as_bytes()])
    }

    /// The MAC of a checkpoint, over its tenant, number, head and predecessor.
    pub fn checkpoint_mac(&self, checkpoint: &CheckpointBody<'_>) -> String {
        let seq = checkpoint.seq.to_string();
        let head_seq = checkpoint.head_seq.to_string();
        let at = checkpoint
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.tag(&[
            b"checkpoint\n",
            checkpoint.tenant.as_str().as_bytes(),
            b"\n",
            seq.as_bytes(),
            b"\n",
            head_seq.as_bytes(),
            b"\n",
            checkpoint.head_hash.as_bytes(),
            b"\n",
            at.as_bytes(),
            b"\n",
            checkpoint.prev_mac.as_bytes(),
        ])
    }
}

fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// What a checkpoint commits to.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointBody<'a> {
    pub tenant: &'a TenantId,
    pub seq: i64,
    pub head_seq: i64,
    pub head_hash: &'a str,
    pub created_at: &'a DateTime<Utc>,
    pub prev_mac: &'a str,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub tenant: TenantId,
    pub seq: i64,
    pub head_seq: i64,
    pub head_hash: String,
    pub created_at: DateTime<Utc>,
    pub prev_mac: String,
    pub mac: String,
}

impl AuditCheckpoint {
    pub fn body(&self) -> CheckpointBody<'_> {
        CheckpointBody {
            tenant: &self.tenant,
            seq: self.seq,
            head_seq: self.head_seq,
            head_hash: &self.head_hash,
            created_at: &self.created_at,
            prev_mac: &self.prev_mac,
        }
    }

    /// `seq:mac`, what an operator keeps to detect a rollback later.
    pub fn anchor(&self) -> String {
        format!("{}:{}", self.seq, self.mac)
    }
}

impl AuditKey {
    /// The checkpoint that seals `head` (seq, hash) after `last` (the tenant's newest
    /// checkpoint as seq, head seq and MAC); `None` when `last` already names `head`.
    pub fn next_checkpoint(
        &self,
        tenant: &TenantId,
        head: (i64, String),
        last: Option<(i64, i64, String)>,
        created_at: DateTime<Utc>,
    ) -> Option<AuditCheckpoint> {
        let (head_seq, head_hash) = head;
        let (seq, prev_mac) = match last {
            Some((_, last_head, _)) if last_head == head_seq => return None,
            Some((seq, _, mac)) => (seq + 1, mac),
            None => (1, FIRST_CHECKPOINT_PREV.to_owned()),
        };
        let mut checkpoint = AuditCheckpoint {
            tenant: tenant.clone(),
            seq,
            head_seq,
            head_hash,
            created_at,
            prev_mac,
            mac: String::new(),
        };
        checkpoint.mac = self.checkpoint_mac(&checkpoint.body());
        Some(checkpoint)
    }
}

/// The predecessor MAC of a tenant's first checkpoint.
pub const FIRST_CHECKPOINT_PREV: &str = GENESIS_HASH;

/// An event with its seal as stored (`mac` is `None` for events written before the
/// log was sealed).
#[derive(Debug, Clone)]
pub struct SealedEvent {
    pub event: AuditEvent,
    pub mac: Option<String>,
}

/// The outcome of checking one tenant's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    pub events_checked: i64,
    pub checkpoints_checked: i64,
    /// The first problem found: the event (or checkpoint head) it concerns and why.
    pub first_broken: Option<(i64, String)>,
    /// The newest valid checkpoint, to keep as an anchor.
    pub newest_checkpoint: Option<AuditCheckpoint>,
}

/// Checks a tenant's events (in seq order) and checkpoints (in order): the hash
/// chain, each event's MAC, each checkpoint's MAC and link, that every checkpoint's
/// head is an event of the chain with that hash, and the optional `anchor`
/// (`seq:mac` of a checkpoint seen earlier) still being there. Without a key only
/// the hash chain and the checkpoints' heads can be checked.
pub fn check_chain(
    events: &[SealedEvent],
    checkpoints: &[AuditCheckpoint],
    key: Option<&AuditKey>,
    anchor: Option<&str>,
) -> ChainCheck {
    let mut check = ChainCheck {
        events_checked: 0,
        checkpoints_checked: 0,
        first_broken: None,
        newest_checkpoint: None,
    };
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut sealed_from: Option<i64> = None;
    for (expected_seq, stored) in (1_i64..).zip(events) {
        let event = &stored.event;
        check.events_checked += 1;
        let broken = if event.seq != expected_seq {
            Some((
                expected_seq,
                format!(
                    "event {expected_seq} is missing (next stored is {})",
                    event.seq
                ),
            ))
        } else if event.prev_hash != prev_hash {
            Some((
                event.seq,
                "its link to the previous event does not match".to_owned(),
            ))
        } else if recompute(event, &prev_hash) != event.hash {
            Some((
                event.seq,
                "its content does not match its hash (the event was changed)".to_owned(),
            ))
        } else {
            seal_problem(stored, key, &mut sealed_from)
        };
        if broken.is_some() {
            check.first_broken = broken;
            return check;
        }
        prev_hash = event.hash.clone();
    }
    if let Some(problem) = key.and_then(|_| unsealed_tail(events, checkpoints)) {
        check.first_broken = Some(problem);
        return check;
    }
    let mut prev_mac = FIRST_CHECKPOINT_PREV.to_owned();
    for (expected, checkpoint) in (1_i64..).zip(checkpoints) {
        check.checkpoints_checked += 1;
        let head = usize::try_from(checkpoint.head_seq - 1)
            .ok()
            .and_then(|i| events.get(i));
        let broken = if checkpoint.seq != expected {
            Some(format!("checkpoint {expected} is missing"))
        } else if checkpoint.prev_mac != prev_mac {
            Some(format!(
                "checkpoint {} does not link to the one before it",
                checkpoint.seq
            ))
        } else if key.is_some_and(|k| k.checkpoint_mac(&checkpoint.body()) != checkpoint.mac) {
            Some(format!(
                "checkpoint {} is not sealed by this node's key (forged or changed)",
                checkpoint.seq
            ))
        } else {
            match head {
                None => Some(format!(
                    "checkpoint {} names event {}, which is gone (events were deleted from the end)",
                    checkpoint.seq, checkpoint.head_seq
                )),
                Some(event) if event.event.hash != checkpoint.head_hash => Some(format!(
                    "checkpoint {} names event {} with another hash (the chain was rewritten)",
                    checkpoint.seq, checkpoint.head_seq
                )),
                Some(_) => None,
            }
        };
        if let Some(why) = broken {
            check.first_broken = Some((checkpoint.head_seq, why));
            return check;
        }
        prev_mac = checkpoint.mac.clone();
        check.newest_checkpoint = Some(checkpoint.clone());
    }
    if let Some(anchor) = anchor {
        let kept = checkpoints.iter().any(|c| c.anchor() == anchor);
        if !kept {
            let seq = anchor
                .split_once(':')
                .and_then(|(seq, _)| seq.parse().ok())
                .unwrap_or(0);
            check.first_broken = Some((
                seq,
                format!(
                    "the anchor {anchor} is not among the checkpoints (the log was rolled back)"
                ),
            ));
        }
    }
    check
}

/// With a key: a log that is sealed must stay sealed. From the head its first
/// checkpoint names, every event carries a MAC; and a log of events without a single
/// checkpoint has had its seals removed (every unit of work ends with one).
fn unsealed_tail(events: &[SealedEvent], checkpoints: &[AuditCheckpoint]) -> Option<(i64, String)> {
    let Some(first) = checkpoints.first() else {
        return events.first().map(|e| {
            (
                e.event.seq,
                "the log has events but no checkpoint (it was never sealed, or its seals were removed)"
                    .to_owned(),
            )
        });
    };
    events
        .iter()
        .find(|e| e.event.seq >= first.head_seq && e.mac.is_none())
        .map(|e| {
            (
                e.event.seq,
                "it has no seal although the log was sealed before it (its seal was removed)"
                    .to_owned(),
            )
        })
}

/// A problem with an event's MAC, if any. Events written before the log was sealed
/// have none; once one is sealed, every later one must be.
fn seal_problem(
    stored: &SealedEvent,
    key: Option<&AuditKey>,
    sealed_from: &mut Option<i64>,
) -> Option<(i64, String)> {
    let seq = stored.event.seq;
    match (&stored.mac, key) {
        (None, _) if sealed_from.is_some() => Some((
            seq,
            "it has no seal although earlier events do (its seal was removed)".to_owned(),
        )),
        (None, _) => None,
        (Some(_), None) => {
            sealed_from.get_or_insert(seq);
            None
        }
        (Some(mac), Some(key)) => {
            sealed_from.get_or_insert(seq);
            (key.event_mac(&stored.event.hash) != *mac).then(|| {
                (
                    seq,
                    "its seal does not match (the event was rewritten and rehashed)".to_owned(),
                )
            })
        }
    }
}

fn recompute(event: &AuditEvent, prev_hash: &str) -> String {
    chain_hash(
        prev_hash,
        event.seq,
        &event.tenant,
        event.kind,
        event.session_key.as_ref(),
        event.run_id.as_ref(),
        &event.actor,
        &event.data,
        &event.created_at,
    )
}
