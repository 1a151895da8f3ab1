//! An audit export an auditor can check alone: JSON Lines, one event a line, with
//! every field the hash chains commit to (`tenant`, `kind`, `sessionKey`, `runId`,
//! `actor`, `data`, `createdAt`, and each event's place in its chain: `chainSeq`,
//! `epoch`, `seenCheckpoint`) and the chain itself (`prevHash`, `hash`).
//! [`verify_export`] recomputes every chain from its first exported event: one chain
//! per session (and one for a tenant's events outside sessions), plus the older
//! tenant-wide chain (events without `chainSeq`, linked in `seq` order). From the
//! start of a chain (`prevHash` = 64 zeros, position 1) it proves the whole chain;
//! from a later event, everything after it.

use std::collections::BTreeMap;
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{AuditEvent, AuditEventKind, GENESIS_HASH};
use crate::domain::{RunId, SessionKey, TenantId};

/// One exported line, as [`super::AuditEvent`] serializes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    seq: i64,
    #[serde(default)]
    chain_seq: Option<i64>,
    #[serde(default)]
    epoch: Option<i64>,
    #[serde(default)]
    seen_checkpoint: Option<i64>,
    tenant: TenantId,
    kind: String,
    session_key: Option<SessionKey>,
    run_id: Option<RunId>,
    actor: String,
    data: serde_json::Value,
    created_at: DateTime<Utc>,
    prev_hash: String,
    hash: String,
}

/// What checking an export found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Events checked, per tenant.
    pub events: BTreeMap<String, u64>,
    /// Tenants whose every exported chain starts at its beginning.
    pub from_genesis: Vec<String>,
    /// The first line that breaks a chain: (line number from 1, seq, why).
    pub first_broken: Option<(usize, i64, String)>,
}

/// Why an export could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("line {line}: {reason}")]
    Unreadable { line: usize, reason: String },
    #[error("the export holds no events")]
    Empty,
}

/// A chain of an export: its tenant and session (or none), or a tenant's older
/// tenant-wide chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ChainId {
    Session(String, String),
    Tenant(String),
}

/// Checks an export: every line parses, the events of each chain follow one another
/// (position +1, `prevHash` = the previous `hash`) and each `hash` is the hash of its
/// line's fields. Stops at the first break.
pub fn verify_export(reader: impl BufRead) -> Result<ExportReport, ExportError> {
    let mut heads: BTreeMap<ChainId, (i64, String)> = BTreeMap::new();
    let mut partial: std::collections::BTreeSet<String> = Default::default();
    let mut report = ExportReport {
        events: BTreeMap::new(),
        from_genesis: Vec::new(),
        first_broken: None,
    };
    for (index, text) in reader.lines().enumerate() {
        let number = index + 1;
        let text = text.map_err(|e| ExportError::Unreadable {
            line: number,
            reason: e.to_string(),
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| ExportError::Unreadable {
            line: number,
            reason: e.to_string(),
        })?;
        let Some(kind) = AuditEventKind::parse(&line.kind) else {
            report.first_broken = Some((number, line.seq, format!("unknown kind {:?}", line.kind)));
            return Ok(report);
        };
        let tenant = line.tenant.to_string();
        let (chain, at) = match line.chain_seq {
            Some(at) => (
                ChainId::Session(
                    tenant.clone(),
                    line.session_key
                        .as_ref()
                        .map_or(String::new(), |k| k.to_string()),
                ),
                at,
            ),
            None => (ChainId::Tenant(tenant.clone()), line.seq),
        };
        match heads.get(&chain) {
            Some((previous, hash)) => {
                if at != previous + 1 {
                    let why = format!(
                        "event {at} of its chain follows event {previous}: events are missing"
                    );
                    report.first_broken = Some((number, line.seq, why));
                    return Ok(report);
                }
                if &line.prev_hash != hash {
                    let why = "its link to the previous event does not match".to_owned();
                    report.first_broken = Some((number, line.seq, why));
                    return Ok(report);
                }
            }
            None => {
                if at == 1 && line.prev_hash != GENESIS_HASH {
                    let why = "the first event does not start the chain".to_owned();
                    report.first_broken = Some((number, line.seq, why));
                    return Ok(report);
                }
                if at != 1 {
                    partial.insert(tenant.clone());
                }
            }
        }
        let event = AuditEvent {
            seq: line.seq,
            chain_seq: line.chain_seq,
            epoch: line.epoch,
            seen_checkpoint: line.seen_checkpoint,
            tenant: line.tenant,
            kind,
            session_key: line.session_key,
            run_id: line.run_id,
            actor: line.actor,
            data: line.data,
            created_at: line.created_at,
            prev_hash: line.prev_hash,
            hash: line.hash,
        };
        if event.expected_hash(&event.prev_hash) != event.hash {
            let why = "its fields do not match its hash (the event was changed)".to_owned();
            report.first_broken = Some((number, event.seq, why));
            return Ok(report);
        }
        *report.events.entry(tenant).or_default() += 1;
        heads.insert(chain, (at, event.hash));
    }
    if report.events.is_empty() {
        return Err(ExportError::Empty);
    }
    report.from_genesis = report
        .events
        .keys()
        .filter(|t| !partial.contains(*t))
        .cloned()
        .collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{AuditFilter, AuditRepository, NewAuditEvent, SqliteStore};

    async fn exported() -> String {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        for tenant in ["default", "acme"] {
            let tenant = TenantId::new(tenant).unwrap();
            for n in 0..3 {
                let event = NewAuditEvent {
                    kind: AuditEventKind::ToolCall,
                    session_key: Some(SessionKey::new("s:1").unwrap()),
                    run_id: None,
                    actor: "agent".into(),
                    data: json!({"n": n, "text": "caf\u{e9} \"quoted\""}),
                };
                store.append_audit(&tenant, event).await.unwrap();
            }
        }
        let mut text = String::new();
        for tenant in ["default", "acme"] {
            let tenant = TenantId::new(tenant).unwrap();
            for event in store
                .list_audit(&tenant, &AuditFilter::default())
                .await
                .unwrap()
            {
                text.push_str(&serde_json::to_string(&event).unwrap());
                text.push('\n');
            }
        }
        text
    }

    #[tokio::test]
    async fn an_export_verifies_alone_and_any_change_to_it_is_found() {
        let text = exported().await;
        let report = verify_export(text.as_bytes()).unwrap();
        assert_eq!(report.first_broken, None);
        assert_eq!(report.events.values().sum::<u64>(), 6);
        assert_eq!(report.from_genesis.len(), 2);

        // One byte of one event's data changed.
        let changed = text.replacen("\"n\":1", "\"n\":7", 1);
        assert_ne!(changed, text);
        let broken = verify_export(changed.as_bytes())
            .unwrap()
            .first_broken
            .unwrap();
        assert_eq!(broken.1, 2, "{broken:?}");
        // An event removed from the middle.
        let lines: Vec<&str> = text.lines().collect();
        let dropped = [lines[0], lines[2]].join("\n");
        let broken = verify_export(dropped.as_bytes())
            .unwrap()
            .first_broken
            .unwrap();
        assert!(broken.2.contains("missing"), "{broken:?}");
        // Garbage is an error naming the line, not a verdict.
        assert!(matches!(
            verify_export("not json\n".as_bytes()),
            Err(ExportError::Unreadable { line: 1, .. })
        ));
        assert!(matches!(
            verify_export("".as_bytes()),
            Err(ExportError::Empty)
        ));
    }
}
