//! The hash-chained audit log. Appends for all tenants go through the writer lock, so
//! reading a chain's head and inserting the next link can never interleave with
//! another append and fork the chain.

use async_trait::async_trait;
// Dynamic SQL here only splices constant column lists and fixed clauses; every
// value is bound.
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, now, parse_id, parse_ts, ts};
use crate::domain::TenantId;
use crate::store::{
    AuditChainReport, AuditEvent, AuditEventKind, AuditFilter, AuditRepository, GENESIS_HASH,
    NewAuditEvent, StoreError, chain_hash,
};

const COLUMNS: &str =
    "tenant_id, seq, kind, session_key, run_id, actor, data, created_at, prev_hash, hash";

fn event_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditEvent, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let kind: String = row.try_get("kind")?;
    let data: String = row.try_get("data")?;
    let session: Option<String> = row.try_get("session_key")?;
    let run: Option<String> = row.try_get("run_id")?;
    Ok(AuditEvent {
        seq,
        tenant: parse_id("tenant_id", row.try_get("tenant_id")?)?,
        kind: AuditEventKind::parse(&kind).ok_or_else(|| {
            StoreError::Corrupt(format!("audit event {seq}: unknown kind {kind:?}"))
        })?,
        session_key: session.map(|s| parse_id("session_key", &s)).transpose()?,
        run_id: run.map(|r| parse_id("run_id", &r)).transpose()?,
        actor: row.try_get("actor")?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("audit event {seq}: data: {e}")))?,
        created_at: parse_ts("created_at", row.try_get("created_at")?)?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
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

/// Appends an event to the tenant's chain inside the caller's write transaction
/// (begun IMMEDIATE under the writer lock): the head is read and advanced in that
/// same transaction, so the chain cannot fork and a rolled-back step leaves no link.
pub(super) async fn append_audit_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    event: NewAuditEvent,
) -> Result<AuditEvent, StoreError> {
    let head = sqlx::query(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let (seq, prev_hash) = match head {
        Some(row) => (
            row.try_get::<i64, _>("seq")? + 1,
            row.try_get::<String, _>("hash")?,
        ),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let created_at = now();
    let hash = chain_hash(
        &prev_hash,
        seq,
        tenant,
        event.kind,
        event.session_key.as_ref(),
        event.run_id.as_ref(),
        &event.actor,
        &event.data,
        &created_at,
    );
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO audit_events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )))
    .bind(tenant.as_str())
    .bind(seq)
    .bind(event.kind.as_str())
    .bind(event.session_key.as_ref().map(|k| k.as_str()))
    .bind(event.run_id.as_ref().map(|r| r.as_str()))
    .bind(&event.actor)
    .bind(event.data.to_string())
    .bind(ts(&created_at))
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(AuditEvent {
        seq,
        tenant: tenant.clone(),
        kind: event.kind,
        session_key: event.session_key,
        run_id: event.run_id,
        actor: event.actor,
        data: event.data,
        created_at,
        prev_hash,
        hash,
    })
}

#[async_trait]
impl AuditRepository for SqliteStore {
    async fn append_audit(
        &self,
        tenant: &TenantId,
        event: NewAuditEvent,
    ) -> Result<AuditEvent, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        let appended = append_audit_in(&mut tx, tenant, event).await?;
        self.commit(tx).await?;
        Ok(appended)
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE tenant_id = ?");
        if filter.run_id.is_some() {
            sql.push_str(" AND run_id = ?");
        }
        if filter.session_key.is_some() {
            sql.push_str(" AND session_key = ?");
        }
        let mut kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        if let Some(kind) = filter.kind {
            kinds.push(kind.as_str());
        }
        if !kinds.is_empty() {
            let marks = vec!["?"; kinds.len()].join(", ");
            sql.push_str(&format!(" AND kind IN ({marks})"));
        }
        if filter.actor.is_some() {
            sql.push_str(" AND actor = ?");
        }
        if filter.text.is_some() {
            sql.push_str(" AND instr(data, ?) > 0");
        }
        if filter.after.is_some() {
            sql.push_str(" AND seq > ?");
        }
        if filter.since.is_some() {
            sql.push_str(" AND created_at >= ?");
        }
        if filter.until.is_some() {
            sql.push_str(" AND created_at <= ?");
        }
        // The newest N when limited, returned oldest first like an unlimited listing;
        // a page after a seq is the oldest N after it.
        let forward = filter.after.is_some();
        sql.push_str(if forward {
            " ORDER BY seq ASC"
        } else {
            " ORDER BY seq DESC"
        });
        if filter.limit.is_some() {
            sql.push_str(" LIMIT ?");
        }
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
        if let Some(run) = &filter.run_id {
            query = query.bind(run.as_str());
        }
        if let Some(key) = &filter.session_key {
            query = query.bind(key.as_str());
        }
        for kind in &kinds {
            query = query.bind(*kind);
        }
        if let Some(actor) = &filter.actor {
            query = query.bind(actor.as_str());
        }
        if let Some(text) = &filter.text {
            query = query.bind(text.as_str());
        }
        if let Some(after) = filter.after {
            query = query.bind(after);
        }
        if let Some(since) = &filter.since {
            query = query.bind(ts(since));
        }
        if let Some(until) = &filter.until {
            query = query.bind(ts(until));
        }
        if let Some(limit) = filter.limit {
            query = query.bind(i64::from(limit));
        }
        let rows = query.fetch_all(self.read_pool()).await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
        if !forward {
            events.reverse();
        }
        Ok(events)
    }

    async fn verify_audit(&self, tenant: &TenantId) -> Result<AuditChainReport, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE tenant_id = ? ORDER BY seq"
        )))
        .bind(tenant.as_str())
        .fetch_all(self.read_pool())
        .await?;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut checked = 0;
        let mut first_broken = None;
        for (expected_seq, row) in (1_i64..).zip(rows.iter()) {
            checked += 1;
            let event = match event_row(row) {
                Ok(event) => event,
                Err(e) => {
                    let seq: i64 = row.try_get("seq").unwrap_or(expected_seq);
                    first_broken = Some((seq, format!("the stored event cannot be read: {e}")));
                    break;
                }
            };
            if event.seq != expected_seq {
                first_broken = Some((
                    expected_seq,
                    format!(
                        "event {expected_seq} is missing (next stored is {})",
                        event.seq
                    ),
                ));
                break;
            }
            if event.prev_hash != prev_hash {
                first_broken = Some((
                    event.seq,
                    "its link to the previous event does not match".to_owned(),
                ));
                break;
            }
            if recompute(&event, &prev_hash) != event.hash {
                first_broken = Some((
                    event.seq,
                    "its content does not match its hash (the event was changed)".to_owned(),
                ));
                break;
            }
            prev_hash = event.hash;
        }
        Ok(AuditChainReport {
            tenant: tenant.clone(),
            events_checked: checked,
            first_broken,
        })
    }

    async fn audit_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_events ORDER BY tenant_id")
                .fetch_all(self.read_pool())
                .await?;
        rows.iter().map(|t| parse_id("tenant_id", t)).collect()
    }
}
