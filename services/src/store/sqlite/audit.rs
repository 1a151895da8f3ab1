//! The hash-chained audit log. Appends for all tenants go through the writer task, so
//! reading a chain's head and inserting the next link can never interleave with
//! another append and fork the chain.

use async_trait::async_trait;
// Dynamic SQL here only splices constant column lists and fixed clauses; every
// value is bound.
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, now, parse_id, parse_ts, ts};
use crate::domain::TenantId;
use crate::store::{
    AuditChainReport, AuditCheckpoint, AuditEvent, AuditEventKind, AuditFilter, AuditKey,
    AuditRepository, GENESIS_HASH, NewAuditEvent, SealedEvent, StoreError, chain_hash, check_chain,
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

/// Appends an event to the tenant's chain inside the caller's write transaction
/// (the writer's `BEGIN IMMEDIATE` batch): the head is read and advanced in that
/// same transaction, so the chain cannot fork and a rolled-back step leaves no link.
pub(super) async fn append_audit_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    event: NewAuditEvent,
    key: Option<&AuditKey>,
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
        "INSERT INTO audit_events ({COLUMNS}, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    .bind(key.map(|k| k.event_mac(&hash)))
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

/// Seals the tenant's head as a checkpoint, inside the caller's write transaction,
/// when there is a key and the head moved since the last checkpoint.
pub(super) async fn checkpoint_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    key: Option<&AuditKey>,
) -> Result<(), StoreError> {
    let Some(key) = key else {
        return Ok(());
    };
    let head = sqlx::query(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(head) = head else {
        return Ok(());
    };
    let head: (i64, String) = (head.try_get("seq")?, head.try_get("hash")?);
    let last = sqlx::query(
        "SELECT seq, head_seq, mac FROM audit_checkpoints WHERE tenant_id = ? \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| -> Result<(i64, i64, String), StoreError> {
        Ok((
            row.try_get("seq")?,
            row.try_get("head_seq")?,
            row.try_get("mac")?,
        ))
    })
    .transpose()?;
    let Some(checkpoint) = key.next_checkpoint(tenant, head, last, now()) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO audit_checkpoints \
         (tenant_id, seq, head_seq, head_hash, created_at, prev_mac, mac) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(tenant.as_str())
    .bind(checkpoint.seq)
    .bind(checkpoint.head_seq)
    .bind(&checkpoint.head_hash)
    .bind(ts(&checkpoint.created_at))
    .bind(&checkpoint.prev_mac)
    .bind(&checkpoint.mac)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl AuditRepository for SqliteStore {
    async fn append_audit(
        &self,
        tenant: &TenantId,
        event: NewAuditEvent,
    ) -> Result<AuditEvent, StoreError> {
        let (tenant, key) = (tenant.clone(), self.audit_key());
        self.write(move |conn| {
            Box::pin(async move {
                let appended = append_audit_in(&mut *conn, &tenant, event, key.as_ref()).await?;
                checkpoint_in(&mut *conn, &tenant, key.as_ref()).await?;
                Ok(appended)
            })
        })
        .await
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

    fn set_audit_key(&self, key: AuditKey) {
        let _ = self.audit_key.set(key);
    }

    async fn verify_audit_anchored(
        &self,
        tenant: &TenantId,
        anchor: Option<&str>,
    ) -> Result<AuditChainReport, StoreError> {
        // Checkpoints first: events only grow, so every checkpoint read here names an
        // event the read after it still sees (the other order races a live writer).
        let rows = sqlx::query(
            "SELECT seq, head_seq, head_hash, created_at, prev_mac, mac FROM audit_checkpoints \
             WHERE tenant_id = ? ORDER BY seq",
        )
        .bind(tenant.as_str())
        .fetch_all(self.read_pool())
        .await?;
        let checkpoints = rows
            .iter()
            .map(|row| {
                Ok(AuditCheckpoint {
                    tenant: tenant.clone(),
                    seq: row.try_get("seq")?,
                    head_seq: row.try_get("head_seq")?,
                    head_hash: row.try_get("head_hash")?,
                    created_at: parse_ts("created_at", row.try_get("created_at")?)?,
                    prev_mac: row.try_get("prev_mac")?,
                    mac: row.try_get("mac")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS}, mac FROM audit_events WHERE tenant_id = ? ORDER BY seq"
        )))
        .bind(tenant.as_str())
        .fetch_all(self.read_pool())
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            match event_row(row) {
                Ok(event) => events.push(SealedEvent {
                    event,
                    mac: row.try_get("mac")?,
                }),
                Err(e) => {
                    let seq: i64 = row.try_get("seq").unwrap_or(0);
                    return Ok(AuditChainReport {
                        tenant: tenant.clone(),
                        events_checked: i64::try_from(events.len()).unwrap_or(i64::MAX) + 1,
                        first_broken: Some((seq, format!("the stored event cannot be read: {e}"))),
                        checkpoints_checked: 0,
                        sealed: self.audit_key.get().is_some(),
                        anchor: None,
                    });
                }
            }
        }
        let key = self.audit_key.get();
        let check = check_chain(&events, &checkpoints, key, anchor);
        Ok(AuditChainReport {
            tenant: tenant.clone(),
            events_checked: check.events_checked,
            first_broken: check.first_broken,
            checkpoints_checked: check.checkpoints_checked,
            sealed: key.is_some(),
            anchor: check.newest_checkpoint.map(|c| c.anchor()),
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
