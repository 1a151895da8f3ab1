//! An audit export an auditor can check alone: JSON Lines, one event a line, with
//! every field the hash chain commits to (`seq`, `tenant`, `kind`, `sessionKey`,
//! `runId`, `actor`, `data`, `createdAt`) and the chain itself (`prevHash`, `hash`).
//! [`verify_export`] recomputes each tenant's chain from its first exported event:
//! from the start of the chain (`prevHash` = 64 zeros, `seq` 1) it proves the whole
//! chain; from a later event, everything after it.

use std::collections::BTreeMap;
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{AuditEventKind, GENESIS_HASH, chain_hash};
use crate::domain::{RunId, SessionKey, TenantId};

/// One exported line, as [`super::AuditEvent`] serializes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    seq: i64,
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
    /// Tenants whose export starts at the beginning of their chain.
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

/// Checks an export: every line parses, each tenant's events follow one another
/// (`seq` +1, `prevHash` = the previous `hash`) and each `hash` is the hash of its
/// line's fields. Stops at the first break.
pub fn verify_export(reader: impl BufRead) -> Result<ExportReport, ExportError> {
    let mut heads: BTreeMap<String, (i64, String)> = BTreeMap::new();
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
        match heads.get(&tenant) {
            Some((seq, hash)) => {
                if line.seq != seq + 1 {
                    let why = format!("event {} follows event {seq}: events are missing", line.seq);
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
                if line.seq == 1 && line.prev_hash == GENESIS_HASH {
                    report.from_genesis.push(tenant.clone());
                } else if line.seq == 1 {
                    let why = "the first event does not start the chain".to_owned();
                    report.first_broken = Some((number, line.seq, why));
                    return Ok(report);
                }
            }
        }
        let expected = chain_hash(
            &line.prev_hash,
            line.seq,
            &line.tenant,
            kind,
            line.session_key.as_ref(),
            line.run_id.as_ref(),
            &line.actor,
            &line.data,
            &line.created_at,
        );
        if expected != line.hash {
            let why = "its fields do not match its hash (the event was changed)".to_owned();
            report.first_broken = Some((number, line.seq, why));
            return Ok(report);
        }
        *report.events.entry(tenant.clone()).or_default() += 1;
        heads.insert(tenant, (line.seq, line.hash));
    }
    if report.events.is_empty() {
        return Err(ExportError::Empty);
    }
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
