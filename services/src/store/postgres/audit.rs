//! The hash-chained audit log. An append takes a transaction advisory lock on its
//! tenant's chain before reading the head, so concurrent appends of one tenant link
//! one after another (and other tenants' chains are not held up); the lock ends with
//! the transaction, after its link is visible.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use super::{PostgresStore, done, now, parse_id};
use crate::domain::TenantId;
use crate::store::chain::{StoredEvent, next_link};
use crate::store::{
    AuditChainReport, AuditCheckpoint, AuditEvent, AuditFilter, AuditKey, AuditRepository,
    NewAuditEvent, SealedEvent, StoreError, check_chain,
};

const COLUMNS: &str =
    "tenant_id, seq, kind, session_key, run_id, actor, data, created_at, prev_hash, hash";

fn event_row(row: &PgRow) -> Result<AuditEvent, StoreError> {
    StoredEvent {
        seq: row.try_get("seq")?,
        tenant: row.try_get("tenant_id")?,
        kind: row.try_get("kind")?,
        session_key: row.try_get("session_key")?,
        run_id: row.try_get("run_id")?,
        actor: row.try_get("actor")?,
        data: row.try_get("data")?,
        created_at: row.try_get("created_at")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    }
    .into_event()
}

/// Appends an event to the tenant's chain inside the caller's transaction (which set
/// the tenant): the chain is locked, its head read and advanced in that transaction,
/// so the chain cannot fork and a rolled-back step leaves no link.
pub(super) async fn append_audit_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    event: NewAuditEvent,
    key: Option<&AuditKey>,
) -> Result<AuditEvent, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("facio.audit:{tenant}"))
        .execute(&mut *conn)
        .await?;
    let head: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let linked = next_link(head, tenant, event, now());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_events ({COLUMNS}, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )))
    .bind(tenant.as_str())
    .bind(linked.seq)
    .bind(linked.kind.as_str())
    .bind(linked.session_key.as_ref().map(|k| k.as_str()))
    .bind(linked.run_id.as_ref().map(|r| r.as_str()))
    .bind(&linked.actor)
    .bind(linked.data.to_string())
    .bind(linked.created_at)
    .bind(&linked.prev_hash)
    .bind(&linked.hash)
    .bind(key.map(|k| k.event_mac(&linked.hash)))
    .execute(&mut *conn)
    .await?;
    Ok(linked)
}

/// Seals the tenant's head as a checkpoint inside the caller's transaction (which
/// holds the tenant's chain lock, taken by its last append), when there is a key and
/// the head moved since the last checkpoint.
pub(super) async fn checkpoint_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    key: Option<&AuditKey>,
) -> Result<(), StoreError> {
    let Some(key) = key else {
        return Ok(());
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("facio.audit:{tenant}"))
        .execute(&mut *conn)
        .await?;
    let head: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(head) = head else {
        return Ok(());
    };
    let last: Option<(i64, i64, String)> = sqlx::query_as(
        "SELECT seq, head_seq, mac FROM audit_checkpoints WHERE tenant_id = $1 \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(checkpoint) = key.next_checkpoint(tenant, head, last, now()) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO audit_checkpoints \
         (tenant_id, seq, head_seq, head_hash, created_at, prev_mac, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.as_str())
    .bind(checkpoint.seq)
    .bind(checkpoint.head_seq)
    .bind(&checkpoint.head_hash)
    .bind(checkpoint.created_at)
    .bind(&checkpoint.prev_mac)
    .bind(&checkpoint.mac)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The listing's query: every filter a bound value.
fn list_query(tenant: &TenantId, filter: &AuditFilter) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM audit_events WHERE tenant_id = "
    ));
    query.push_bind(tenant.as_str());
    if let Some(run) = &filter.run_id {
        query.push(" AND run_id = ").push_bind(run.as_str());
    }
    if let Some(key) = &filter.session_key {
        query.push(" AND session_key = ").push_bind(key.as_str());
    }
    let mut kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
    if let Some(kind) = filter.kind {
        kinds.push(kind.as_str());
    }
    if !kinds.is_empty() {
        query.push(" AND kind = ANY(").push_bind(kinds).push(")");
    }
    if let Some(actor) = &filter.actor {
        query.push(" AND actor = ").push_bind(actor.as_str());
    }
    if let Some(text) = &filter.text {
        query
            .push(" AND strpos(data, ")
            .push_bind(text.as_str())
            .push(") > 0");
    }
    if let Some(after) = filter.after {
        query.push(" AND seq > ").push_bind(after);
    }
    if let Some(since) = filter.since {
        query.push(" AND created_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND created_at <= ").push_bind(until);
    }
    // The newest N when limited, returned oldest first like an unlimited listing;
    // a page after a seq is the oldest N after it.
    query.push(if filter.after.is_some() {
        " ORDER BY seq ASC"
    } else {
        " ORDER BY seq DESC"
    });
    if let Some(limit) = filter.limit {
        query.push(" LIMIT ").push_bind(i64::from(limit));
    }
    query
}

#[async_trait]
impl AuditRepository for PostgresStore {
    async fn append_audit(
        &self,
        tenant: &TenantId,
        event: NewAuditEvent,
    ) -> Result<AuditEvent, StoreError> {
        let key = self.audit_key();
        let mut tx = self.write(tenant).await?;
        let appended = append_audit_in(&mut tx, tenant, event, key.as_ref()).await?;
        checkpoint_in(&mut tx, tenant, key.as_ref()).await?;
        self.commit(tx).await?;
        Ok(appended)
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = list_query(tenant, filter)
            .build()
            .fetch_all(&mut *tx)
            .await?;
        done(tx).await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
        if filter.after.is_none() {
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
        let mut tx = self.read(tenant).await?;
        let checkpoint_rows: Vec<(
            i64,
            i64,
            String,
            chrono::DateTime<chrono::Utc>,
            String,
            String,
        )> = sqlx::query_as(
            "SELECT seq, head_seq, head_hash, created_at, prev_mac, mac \
                 FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        // Events after checkpoints: events only grow, so every checkpoint read first
        // names an event this later read still sees.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, mac FROM audit_events WHERE tenant_id = $1 ORDER BY seq"
        )))
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        let key = self.audit_key.get();
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
                        sealed: key.is_some(),
                        anchor: None,
                    });
                }
            }
        }
        let checkpoints: Vec<AuditCheckpoint> = checkpoint_rows
            .into_iter()
            .map(
                |(seq, head_seq, head_hash, created_at, prev_mac, mac)| AuditCheckpoint {
                    tenant: tenant.clone(),
                    seq,
                    head_seq,
                    head_hash,
                    created_at,
                    prev_mac,
                    mac,
                },
            )
            .collect();
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
        let mut tx = self.read_all_tenants().await?;
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT tenant_id COLLATE \"C\" FROM audit_events ORDER BY 1",
        )
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter().map(|t| parse_id("tenant_id", t)).collect()
    }
}
