//! The keyed seal over the audit log: a MAC on every event and signed checkpoints.
//!
//! Each session's events form one hash chain (and a tenant's events outside sessions
//! one more), so writers of different sessions never wait on one another. The hash
//! chains alone catch an event changed, reordered or removed inside a chain, but
//! someone with write access to the database can drop the triggers, rewrite events
//! and recompute every hash, or cut events off the end. So each event also carries
//! `mac = HMAC-SHA256(audit key, hash)` and names the newest checkpoint its writer
//! saw; and checkpoints, linked one after another and sealed with the same key, name
//! the heads of the chains that moved since the checkpoint before (folded in order,
//! they name every chain's head). The audit key is derived from the master key, which
//! the database never holds, so neither a recomputed event nor a forged checkpoint
//! verifies; every head a checkpoint names must still be there, so deleting a
//! session's newest events, a whole session chain, or every event is found; and an
//! event that names a checkpoint which is gone shows the checkpoints were cut. What
//! remains undetectable from the database alone is rolling back events and
//! checkpoints together to an earlier state; `facio audit verify` prints the newest
//! checkpoint so it can be kept elsewhere and compared (`--anchor`).
//!
//! Events and checkpoints written before chains were per session form one chain per
//! tenant (`chain_seq` is `None`; a checkpoint names its `head_seq`) and are checked
//! by the rules they were written under.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::TenantId;
use crate::store::{AuditEvent, GENESIS_HASH};

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

/// What an older checkpoint (of a tenant-wide chain) commits to.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointBody<'a> {
    pub tenant: &'a TenantId,
    pub seq: i64,
    pub head_seq: i64,
    pub head_hash: &'a str,
    pub created_at: &'a DateTime<Utc>,
    pub prev_mac: &'a str,
}

/// A chain's head as a checkpoint names it: the chain (a session key, or "" for the
/// tenant's events outside sessions), its newest event's `chain_seq` and hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainHead(pub String, pub i64, pub String);

impl ChainHead {
    pub fn chain(&self) -> &str {
        &self.0
    }
    pub fn chain_seq(&self) -> i64 {
        self.1
    }
    pub fn hash(&self) -> &str {
        &self.2
    }
}

/// The stored text of a checkpoint's heads.
pub fn heads_text(heads: &[ChainHead]) -> String {
    // A list of (string, integer, string) always serializes.
    serde_json::to_string(heads).unwrap_or_default()
}

/// Reads a checkpoint's stored heads.
pub fn parse_heads(text: &str) -> Result<Vec<ChainHead>, serde_json::Error> {
    serde_json::from_str(text)
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub tenant: TenantId,
    pub seq: i64,
    /// The head of the older tenant-wide chain it names (0 and "" when `heads` is set).
    pub head_seq: i64,
    pub head_hash: String,
    /// The heads of the per-session chains that moved since the checkpoint before it
    /// (`None` for an older checkpoint of the tenant-wide chain).
    pub heads: Option<Vec<ChainHead>>,
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
    /// The MAC of a checkpoint of per-session chains: its tenant, number, time,
    /// predecessor and the heads it names.
    fn heads_mac(
        &self,
        tenant: &TenantId,
        seq: i64,
        created_at: &DateTime<Utc>,
        prev_mac: &str,
        heads: &[ChainHead],
    ) -> String {
        let seq = seq.to_string();
        let at = created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.tag(&[
            b"checkpoint v2\n",
            tenant.as_str().as_bytes(),
            b"\n",
            seq.as_bytes(),
            b"\n",
            at.as_bytes(),
            b"\n",
            prev_mac.as_bytes(),
            b"\n",
            heads_text(heads).as_bytes(),
        ])
    }

    /// The MAC a checkpoint must carry.
    pub fn seal_of(&self, checkpoint: &AuditCheckpoint) -> String {
        match &checkpoint.heads {
            Some(heads) => self.heads_mac(
                &checkpoint.tenant,
                checkpoint.seq,
                &checkpoint.created_at,
                &checkpoint.prev_mac,
                heads,
            ),
            None => self.checkpoint_mac(&checkpoint.body()),
        }
    }

    /// The checkpoint after `last` (the tenant's newest checkpoint as seq and MAC)
    /// that names `heads`, the chains that moved since; `None` when none moved.
    pub fn next_checkpoint(
        &self,
        tenant: &TenantId,
        mut heads: Vec<ChainHead>,
        last: Option<(i64, String)>,
        created_at: DateTime<Utc>,
    ) -> Option<AuditCheckpoint> {
        if heads.is_empty() {
            return None;
        }
        heads.sort_by(|a, b| a.0.cmp(&b.0));
        let (seq, prev_mac) = match last {
            Some((seq, mac)) => (seq + 1, mac),
            None => (1, FIRST_CHECKPOINT_PREV.to_owned()),
        };
        let mut checkpoint = AuditCheckpoint {
            tenant: tenant.clone(),
            seq,
            head_seq: 0,
            head_hash: String::new(),
            heads: Some(heads),
            created_at,
            prev_mac,
            mac: String::new(),
        };
        checkpoint.mac = self.seal_of(&checkpoint);
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
    pub chains: i64,
    pub checkpoints_checked: i64,
    /// Events of per-session chains that no checkpoint names yet (the newest).
    pub unsealed: i64,
    /// The first problem found: the event it concerns (its `seq`; 0 when the event
    /// is gone) and why.
    pub first_broken: Option<(i64, String)>,
    /// The newest valid checkpoint, to keep as an anchor.
    pub newest_checkpoint: Option<AuditCheckpoint>,
}

/// How a message names a chain.
fn chain_name(chain: &str) -> String {
    if chain.is_empty() {
        "the tenant's events outside sessions".to_owned()
    } else {
        format!("session {chain}")
    }
}

/// Checks a tenant's log: its events (in `seq` order) and checkpoints (in order).
///
/// Every chain must run from its first event without a gap, each event linking to
/// the one before and hashing to its stored hash; with a key, every event of a
/// per-session chain carries a valid MAC. Checkpoints must follow one another, each
/// sealed by the key, each head they name must be an event of its chain with that
/// hash, and no event may name a checkpoint that is not there. The optional `anchor`
/// (`seq:mac` of a checkpoint seen earlier) must still be among them. Without a key,
/// only the chains and the checkpoints' heads can be checked.
pub fn check_chain(
    events: &[SealedEvent],
    checkpoints: &[AuditCheckpoint],
    key: Option<&AuditKey>,
    anchor: Option<&str>,
) -> ChainCheck {
    let mut check = ChainCheck {
        events_checked: 0,
        chains: 0,
        checkpoints_checked: 0,
        unsealed: 0,
        first_broken: None,
        newest_checkpoint: None,
    };
    let (older, linked): (Vec<&SealedEvent>, Vec<&SealedEvent>) =
        events.iter().partition(|e| e.event.chain_seq.is_none());
    let mut chains: std::collections::BTreeMap<&str, Vec<&SealedEvent>> = Default::default();
    for stored in &linked {
        chains.entry(stored.event.chain()).or_default().push(stored);
    }
    for chain in chains.values_mut() {
        chain.sort_by_key(|e| e.event.chain_seq);
    }
    check.chains = i64::try_from(chains.len()).unwrap_or(i64::MAX) + i64::from(!older.is_empty());
    check.events_checked = i64::try_from(events.len()).unwrap_or(i64::MAX);
    if let Some(problem) = check_older_chain(&older, checkpoints, key) {
        check.first_broken = Some(problem);
        return check;
    }
    let newest = checkpoints.last().map_or(0, |c| c.seq);
    let problems = chains
        .iter()
        .filter_map(|(chain, events)| check_linked_chain(chain, events, key, newest));
    if let Some(problem) = problems.min_by_key(|(seq, _)| *seq) {
        check.first_broken = Some(problem);
        return check;
    }
    let mut prev_mac = FIRST_CHECKPOINT_PREV.to_owned();
    let mut folded: std::collections::HashMap<&str, i64> = Default::default();
    for (expected, checkpoint) in (1_i64..).zip(checkpoints) {
        check.checkpoints_checked += 1;
        let broken = if checkpoint.seq != expected {
            Some((0, format!("checkpoint {expected} is missing")))
        } else if checkpoint.prev_mac != prev_mac {
            Some((
                0,
                format!(
                    "checkpoint {} does not link to the one before it",
                    checkpoint.seq
                ),
            ))
        } else if key.is_some_and(|k| k.seal_of(checkpoint) != checkpoint.mac) {
            Some((
                0,
                format!(
                    "checkpoint {} is not sealed by this node's key (forged or changed)",
                    checkpoint.seq
                ),
            ))
        } else {
            match &checkpoint.heads {
                None => older_head_problem(checkpoint, &older),
                Some(heads) => heads.iter().find_map(|head| {
                    let problem = head_problem(checkpoint.seq, head, &chains, &folded);
                    if problem.is_none() {
                        folded.insert(head.chain(), head.chain_seq());
                    }
                    problem
                }),
            }
        };
        if broken.is_some() {
            check.first_broken = broken;
            return check;
        }
        prev_mac = checkpoint.mac.clone();
        check.newest_checkpoint = Some(checkpoint.clone());
    }
    check.unsealed = chains
        .iter()
        .map(|(chain, events)| {
            let sealed = folded.get(chain).copied().unwrap_or(0);
            events
                .iter()
                .filter(|e| e.event.chain_seq.unwrap_or(0) > sealed)
                .count()
        })
        .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        .sum();
    if let Some(anchor) = anchor {
        let kept = checkpoints.iter().any(|c| c.anchor() == anchor);
        if !kept {
            check.first_broken = Some((
                0,
                format!(
                    "the anchor {anchor} is not among the checkpoints (the log was rolled back)"
                ),
            ));
        }
    }
    check
}

/// The first problem of one per-session chain (its events in `chain_seq` order).
fn check_linked_chain(
    chain: &str,
    events: &[&SealedEvent],
    key: Option<&AuditKey>,
    newest_checkpoint: i64,
) -> Option<(i64, String)> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    for (expected, stored) in (1_i64..).zip(events) {
        let event = &stored.event;
        let at = event.chain_seq.unwrap_or(0);
        let problem = if at != expected {
            Some(format!(
                "event {expected} of {} is missing (next stored is its event {at})",
                chain_name(chain)
            ))
        } else if event.prev_hash != prev_hash {
            Some("its link to the previous event of its session does not match".to_owned())
        } else if event.expected_hash(&prev_hash) != event.hash {
            Some("its content does not match its hash (the event was changed)".to_owned())
        } else if event.seen_checkpoint.unwrap_or(0) > newest_checkpoint {
            Some(format!(
                "it was written after checkpoint {}, which is gone (checkpoints were deleted)",
                event.seen_checkpoint.unwrap_or(0)
            ))
        } else {
            match (key, &stored.mac) {
                (None, _) => None,
                (Some(_), None) => Some("it has no seal (its seal was removed)".to_owned()),
                (Some(key), Some(mac)) => (key.event_mac(&event.hash) != *mac).then(|| {
                    "its seal does not match (the event was rewritten and rehashed)".to_owned()
                }),
            }
        };
        if let Some(why) = problem {
            return Some((event.seq, why));
        }
        prev_hash = event.hash.clone();
    }
    None
}

/// Whether a checkpoint's head of a per-session chain is there, unchanged, and not
/// behind what an earlier checkpoint named.
fn head_problem(
    checkpoint: i64,
    head: &ChainHead,
    chains: &std::collections::BTreeMap<&str, Vec<&SealedEvent>>,
    folded: &std::collections::HashMap<&str, i64>,
) -> Option<(i64, String)> {
    let name = chain_name(head.chain());
    let event = usize::try_from(head.chain_seq() - 1)
        .ok()
        .and_then(|i| chains.get(head.chain())?.get(i));
    match event {
        None => Some((
            0,
            format!(
                "checkpoint {checkpoint} names event {} of {name}, which is gone (events were deleted)",
                head.chain_seq()
            ),
        )),
        Some(e) if e.event.hash != head.hash() => Some((
            e.event.seq,
            format!(
                "checkpoint {checkpoint} names event {} of {name} with another hash (the chain was rewritten)",
                head.chain_seq()
            ),
        )),
        Some(e)
            if folded
                .get(head.chain())
                .is_some_and(|&s| s > head.chain_seq()) =>
        {
            Some((
                e.event.seq,
                format!("checkpoint {checkpoint} moves the head of {name} back"),
            ))
        }
        Some(_) => None,
    }
}

/// The first problem of the older tenant-wide chain (events in `seq` order): the
/// hash chain and, from the first seal on, every event's MAC.
fn check_older_chain(
    events: &[&SealedEvent],
    checkpoints: &[AuditCheckpoint],
    key: Option<&AuditKey>,
) -> Option<(i64, String)> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut sealed_from: Option<i64> = None;
    for (expected_seq, stored) in (1_i64..).zip(events) {
        let event = &stored.event;
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
        } else if event.expected_hash(&prev_hash) != event.hash {
            Some((
                event.seq,
                "its content does not match its hash (the event was changed)".to_owned(),
            ))
        } else {
            seal_problem(stored, key, &mut sealed_from)
        };
        if broken.is_some() {
            return broken;
        }
        prev_hash = event.hash.clone();
    }
    key.and_then(|_| unsealed_tail(events, checkpoints))
}

/// Whether an older checkpoint's head is an event of the tenant-wide chain with
/// that hash.
fn older_head_problem(
    checkpoint: &AuditCheckpoint,
    events: &[&SealedEvent],
) -> Option<(i64, String)> {
    let head = usize::try_from(checkpoint.head_seq - 1)
        .ok()
        .and_then(|i| events.get(i));
    match head {
        None => Some((
            checkpoint.head_seq,
            format!(
                "checkpoint {} names event {}, which is gone (events were deleted from the end)",
                checkpoint.seq, checkpoint.head_seq
            ),
        )),
        Some(event) if event.event.hash != checkpoint.head_hash => Some((
            checkpoint.head_seq,
            format!(
                "checkpoint {} names event {} with another hash (the chain was rewritten)",
                checkpoint.seq, checkpoint.head_seq
            ),
        )),
        Some(_) => None,
    }
}

/// With a key: an older chain that is sealed must stay sealed. From the head its
/// first checkpoint names, every event carries a MAC; and a log of events without a
/// single checkpoint has had its seals removed (every unit of work ended with one).
fn unsealed_tail(
    events: &[&SealedEvent],
    checkpoints: &[AuditCheckpoint],
) -> Option<(i64, String)> {
    let Some(first) = checkpoints.first() else {
        return events.first().map(|e| {
            (
                e.event.seq,
                "the log has events but no checkpoint (it was never sealed, or its seals were removed)"
                    .to_owned(),
            )
        });
    };
    let from = if first.heads.is_some() {
        i64::MAX
    } else {
        first.head_seq
    };
    events
        .iter()
        .find(|e| e.event.seq >= from && e.mac.is_none())
        .map(|e| {
            (
                e.event.seq,
                "it has no seal although the log was sealed before it (its seal was removed)"
                    .to_owned(),
            )
        })
}

/// A problem with an older event's MAC, if any. Events written before the log was
/// sealed have none; once one is sealed, every later one must be.
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
