//! The hash-chained audit log, one chain per session. Appends for all tenants go
//! through the writer task, so reading a chain's head and inserting the next link can
//! never interleave with another append and fork the chain.

use async_trait::async_trait;
// Dynamic SQL here only splices constant column lists and fixed clauses; every
// value is bound.
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, now, parse_id, parse_ts, ts};
use crate::domain::TenantId;
use crate::store::chain::{StoredEvent, next_link, stored_heads};
use crate::store::{
    AuditChainReport, AuditCheckpoint, AuditEvent, AuditFilter, AuditKey, AuditRepository,
    ChainHead, GENESIS_HASH, NewAuditEvent, SealedEvent, StoreError, check_chain, heads_text,
};

const COLUMNS: &str = "tenant_id, seq, kind, session_key, run_id, actor, data, created_at, \
                       prev_hash, hash, chain_seq, epoch, seen_checkpoint";

fn event_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditEvent, StoreError> {
    StoredEvent {
        seq: row.try_get("seq")?,
        chain_seq: row.try_get("chain_seq")?,
        epoch: row.try_get("epoch")?,
        seen_checkpoint: row.try_get("seen_checkpoint")?,
        tenant: row.try_get("tenant_id")?,
        kind: row.try_get("kind")?,
        session_key: row.try_get("session_key")?,
        run_id: row.try_get("run_id")?,
        actor: row.try_get("actor")?,
        data: row.try_get("data")?,
        created_at: parse_ts("created_at", row.try_get("created_at")?)?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    }
    .into_event()
}

/// Appends an event to its session's chain inside the caller's write transaction
/// (the writer's `BEGIN IMMEDIATE` batch): the head is read and advanced (by the
/// `audit_heads_follow` trigger) in that same transaction, so the chain cannot fork
/// and a rolled-back step leaves no link. `epoch` is the lease the step holds.
pub(super) async fn append_audit_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    event: NewAuditEvent,
    epoch: Option<i64>,
    key: Option<&AuditKey>,
) -> Result<AuditEvent, StoreError> {
    let (chain_seq, hash, seen): (Option<i64>, Option<String>, i64) = sqlx::query_as(
        "SELECT h.chain_seq, h.hash, \
                (SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints WHERE tenant_id = ?1) \
         FROM (SELECT 1) LEFT JOIN audit_heads h ON h.tenant_id = ?1 AND h.chain = ?2",
    )
    .bind(tenant.as_str())
    .bind(event.chain())
    .fetch_one(&mut *conn)
    .await?;
    let head = (
        chain_seq.unwrap_or(0),
        hash.unwrap_or_else(|| GENESIS_HASH.to_owned()),
    );
    let mut linked = next_link(head, seen, epoch, tenant, event, now());
    linked.seq = sqlx::query_scalar(AssertSqlSafe(format!(
        "INSERT INTO audit_events ({COLUMNS}, mac) VALUES \
         (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_events WHERE tenant_id = ?1), \
          ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING seq"
    )))
    .bind(tenant.as_str())
    .bind(linked.kind.as_str())
    .bind(linked.session_key.as_ref().map(|k| k.as_str()))
    .bind(linked.run_id.as_ref().map(|r| r.as_str()))
    .bind(&linked.actor)
    .bind(linked.data.to_string())
    .bind(ts(&linked.created_at))
    .bind(&linked.prev_hash)
    .bind(&linked.hash)
    .bind(linked.chain_seq)
    .bind(linked.epoch)
    .bind(linked.seen_checkpoint)
    .bind(key.map(|k| k.event_mac(&linked.hash)))
    .fetch_one(&mut *conn)
    .await?;
    Ok(linked)
}

/// Seals the tenant's chains that moved since their last checkpoint, inside the
/// caller's write transaction, when there is a key: one checkpoint naming their heads.
pub(super) async fn checkpoint_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    key: Option<&AuditKey>,
) -> Result<bool, StoreError> {
    let Some(key) = key else {
        return Ok(false);
    };
    let heads: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT chain, chain_seq, hash FROM audit_heads \
         WHERE tenant_id = ? AND chain_seq > sealed_seq",
    )
    .bind(tenant.as_str())
    .fetch_all(&mut *conn)
    .await?;
    if heads.is_empty() {
        return Ok(false);
    }
    let heads = heads
        .into_iter()
        .map(|(chain, seq, hash)| ChainHead(chain, seq, hash))
        .collect();
    let last: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, mac FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(checkpoint) = key.next_checkpoint(tenant, heads, last, now()) else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO audit_checkpoints \
         (tenant_id, seq, head_seq, head_hash, heads, created_at, prev_mac, mac) \
         VALUES (?, ?, 0, '', ?, ?, ?, ?)",
    )
    .bind(tenant.as_str())
    .bind(checkpoint.seq)
    .bind(heads_text(checkpoint.heads.as_deref().unwrap_or_default()))
    .bind(ts(&checkpoint.created_at))
    .bind(&checkpoint.prev_mac)
    .bind(&checkpoint.mac)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE audit_heads SET sealed_seq = chain_seq \
         WHERE tenant_id = ? AND chain_seq > sealed_seq",
    )
    .bind(tenant.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// A stored checkpoint of `tenant`.
fn checkpoint_row(
    tenant: &TenantId,
    row: &sqlx::sqlite::SqliteRow,
) -> Result<AuditCheckpoint, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let heads = stored_heads(seq, row.try_get("heads")?)?;
    Ok(AuditCheckpoint {
        tenant: tenant.clone(),
        seq,
        head_seq: row.try_get("head_seq")?,
        head_hash: row.try_get("head_hash")?,
        heads,
        created_at: parse_ts("created_at", row.try_get("created_at")?)?,
        prev_mac: row.try_get("prev_mac")?,
        mac: row.try_get("mac")?,
    })
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
                let appended =
                    append_audit_in(&mut *conn, &tenant, event, None, key.as_ref()).await?;
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
        // A run's or a session's events by their own index: without statistics the
        // planner walks the tenant's events newest first (the order asked for) until
        // it meets the run's, every event since the run began.
        let index = if filter.run_id.is_some() {
            " INDEXED BY audit_by_run"
        } else if filter.session_key.is_some() {
            " INDEXED BY audit_by_session"
        } else {
            ""
        };
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events{index} WHERE tenant_id = ?");
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
        // One read transaction: checkpoints and events from the same snapshot (a
        // checkpoint or event committed between two reads would look like tampering).
        let mut snapshot = self.read_pool().begin().await?;
        let rows = sqlx::query(
            "SELECT seq, head_seq, head_hash, heads, created_at, prev_mac, mac \
             FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *snapshot)
        .await?;
        let checkpoints = rows
            .iter()
            .map(|row| checkpoint_row(tenant, row))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS}, mac FROM audit_events WHERE tenant_id = ? ORDER BY seq"
        )))
        .bind(tenant.as_str())
        .fetch_all(&mut *snapshot)
        .await?;
        snapshot.commit().await?;
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
                        chains: 0,
                        unsealed: 0,
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
            chains: check.chains,
            unsealed: check.unsealed,
            checkpoints_checked: check.checkpoints_checked,
            sealed: key.is_some(),
            anchor: check.newest_checkpoint.map(|c| c.anchor()),
        })
    }

    async fn seal_audit(&self) -> Result<u64, StoreError> {
        let key = self.audit_key();
        if key.is_none() {
            return Ok(0);
        }
        // Most seconds nothing moved since the last unit of work sealed it: a read
        // says so without taking the writer.
        let moved: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM audit_heads WHERE chain_seq > sealed_seq LIMIT 1")
                .fetch_optional(self.read_pool())
                .await?;
        if moved.is_none() {
            return Ok(0);
        }
        // Not new work: it waits for room in a full queue rather than failing.
        self.write_waiting(move |conn| {
            Box::pin(async move {
                let tenants: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT tenant_id FROM audit_heads WHERE chain_seq > sealed_seq",
                )
                .fetch_all(&mut *conn)
                .await?;
                let mut sealed = 0;
                for tenant in tenants {
                    let tenant: TenantId = parse_id("tenant_id", &tenant)?;
                    sealed += u64::from(checkpoint_in(&mut *conn, &tenant, key.as_ref()).await?);
                }
                Ok(sealed)
            })
        })
        .await
    }

    async fn audit_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_events ORDER BY tenant_id")
                .fetch_all(self.read_pool())
                .await?;
        rows.iter().map(|t| parse_id("tenant_id", t)).collect()
    }
}
