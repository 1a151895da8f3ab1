//! The hash-chained audit log. An append takes a transaction advisory lock on its
//! tenant's chain before reading the head, so concurrent appends of one tenant link
//! one after another (and other tenants' chains are not held up); the lock ends with
//! the transaction, after its link is visible.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use super::{PostgresStore, done, now, parse_id};
use crate::domain::TenantId;
use crate::store::chain::{ChainWalk, StoredEvent, next_link};
use crate::store::{
    AuditChainReport, AuditEvent, AuditFilter, AuditRepository, NewAuditEvent, StoreError,
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
        "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
    .execute(&mut *conn)
    .await?;
    Ok(linked)
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
        let mut tx = self.write(tenant).await?;
        let appended = append_audit_in(&mut tx, tenant, event).await?;
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

    async fn verify_audit(&self, tenant: &TenantId) -> Result<AuditChainReport, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE tenant_id = $1 ORDER BY seq"
        )))
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        let mut walk = ChainWalk::new();
        for (expected, row) in (1_i64..).zip(&rows) {
            let seq = row.try_get("seq").unwrap_or(expected);
            if !walk.check(seq, event_row(row)) {
                break;
            }
        }
        Ok(walk.report(tenant))
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
