//! The hash-chained audit log, one chain per session. An append locks its chain's
//! head row before reading it, so concurrent appends to one session link one after
//! another while other sessions' appends go on beside them; the lock ends with the
//! transaction, after its link is visible. Checkpoints are written by
//! [`AuditRepository::seal_audit`], which the runtime calls every second: a checkpoint
//! in every step would make all of a tenant's writers queue on its checkpoint chain.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use super::{PostgresStore, done, now, parse_id};
use crate::domain::TenantId;
use crate::store::chain::{StoredEvent, next_link, stored_heads};
use crate::store::{
    AuditChainReport, AuditCheckpoint, AuditEvent, AuditFilter, AuditKey, AuditRepository,
    ChainHead, GENESIS_HASH, NewAuditEvent, SealedEvent, StoreError, check_chain, heads_text,
};

const COLUMNS: &str = "tenant_id, seq, kind, session_key, run_id, actor, data, created_at, \
                       prev_hash, hash, chain_seq, epoch, seen_checkpoint";

fn event_row(row: &PgRow) -> Result<AuditEvent, StoreError> {
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
        created_at: row.try_get("created_at")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    }
    .into_event()
}

/// The chain's head, locked for the rest of the transaction (created for a new
/// chain), and the newest checkpoint of the tenant.
async fn lock_head(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    chain: &str,
) -> Result<((i64, String), i64), StoreError> {
    const LOCK: &str = "SELECT chain_seq, hash, \
         (SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints WHERE tenant_id = $1) \
         FROM audit_heads WHERE tenant_id = $1 AND chain = $2 FOR UPDATE OF audit_heads";
    let locked: Option<(i64, String, i64)> = sqlx::query_as(LOCK)
        .bind(tenant.as_str())
        .bind(chain)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some((seq, hash, seen)) = locked {
        return Ok(((seq, hash), seen));
    }
    sqlx::query(
        "INSERT INTO audit_heads (tenant_id, chain, chain_seq, hash) VALUES ($1, $2, 0, $3) \
         ON CONFLICT (tenant_id, chain) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(chain)
    .bind(GENESIS_HASH)
    .execute(&mut *conn)
    .await?;
    let (seq, hash, seen): (i64, String, i64) = sqlx::query_as(LOCK)
        .bind(tenant.as_str())
        .bind(chain)
        .fetch_one(&mut *conn)
        .await?;
    Ok(((seq, hash), seen))
}

/// Appends an event to its session's chain inside the caller's transaction (which
/// set the tenant): the chain's head is locked, read and advanced (by the
/// `audit_heads_follow` trigger) in that transaction, so the chain cannot fork and a
/// rolled-back step leaves no link. `epoch` is the lease the step holds.
pub(super) async fn append_audit_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    event: NewAuditEvent,
    epoch: Option<i64>,
    key: Option<&AuditKey>,
) -> Result<AuditEvent, StoreError> {
    let (head, seen) = lock_head(&mut *conn, tenant, event.chain()).await?;
    let mut linked = next_link(head, seen, epoch, tenant, event, now());
    linked.seq = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_events ({COLUMNS}, mac) \
         VALUES ($1, nextval('audit_events_seq'), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13) RETURNING seq"
    )))
    .bind(tenant.as_str())
    .bind(linked.kind.as_str())
    .bind(linked.session_key.as_ref().map(|k| k.as_str()))
    .bind(linked.run_id.as_ref().map(|r| r.as_str()))
    .bind(&linked.actor)
    .bind(linked.data.to_string())
    .bind(linked.created_at)
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
/// caller's transaction (which set the tenant), when there is a key: one checkpoint
/// naming their heads. Sealers of one tenant take turns on a transaction advisory
/// lock (the checkpoints form one chain); a head that a step holds right now is left
/// for the next checkpoint instead of waited for.
pub(super) async fn checkpoint_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    key: Option<&AuditKey>,
) -> Result<bool, StoreError> {
    let Some(key) = key else {
        return Ok(false);
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("facio.audit.seal:{tenant}"))
        .execute(&mut *conn)
        .await?;
    let heads: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT chain, chain_seq, hash FROM audit_heads \
         WHERE tenant_id = $1 AND chain_seq > sealed_seq FOR UPDATE SKIP LOCKED",
    )
    .bind(tenant.as_str())
    .fetch_all(&mut *conn)
    .await?;
    if heads.is_empty() {
        return Ok(false);
    }
    let chains: Vec<String> = heads.iter().map(|(chain, _, _)| chain.clone()).collect();
    let heads = heads
        .into_iter()
        .map(|(chain, seq, hash)| ChainHead(chain, seq, hash))
        .collect();
    let last: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, mac FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
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
         VALUES ($1, $2, 0, '', $3, $4, $5, $6)",
    )
    .bind(tenant.as_str())
    .bind(checkpoint.seq)
    .bind(heads_text(checkpoint.heads.as_deref().unwrap_or_default()))
    .bind(checkpoint.created_at)
    .bind(&checkpoint.prev_mac)
    .bind(&checkpoint.mac)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE audit_heads SET sealed_seq = chain_seq WHERE tenant_id = $1 AND chain = ANY($2)",
    )
    .bind(tenant.as_str())
    .bind(&chains)
    .execute(&mut *conn)
    .await?;
    Ok(true)
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
        let appended = append_audit_in(&mut tx, tenant, event, None, key.as_ref()).await?;
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
        // One snapshot for checkpoints and events (a checkpoint or event committed
        // between two reads would look like tampering).
        let mut tx = self.snapshot(tenant).await?;
        let checkpoint_rows = sqlx::query(
            "SELECT seq, head_seq, head_hash, heads, created_at, prev_mac, mac \
                 FROM audit_checkpoints WHERE tenant_id = $1 ORDER BY seq",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
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
                        chains: 0,
                        unsealed: 0,
                        checkpoints_checked: 0,
                        sealed: key.is_some(),
                        anchor: None,
                    });
                }
            }
        }
        let checkpoints = checkpoint_rows
            .iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let heads = stored_heads(seq, row.try_get("heads")?)?;
                Ok(AuditCheckpoint {
                    tenant: tenant.clone(),
                    seq,
                    head_seq: row.try_get("head_seq")?,
                    head_hash: row.try_get("head_hash")?,
                    heads,
                    created_at: row.try_get("created_at")?,
                    prev_mac: row.try_get("prev_mac")?,
                    mac: row.try_get("mac")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
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
        let mut tx = self.read_all_tenants().await?;
        let tenants: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT tenant_id FROM audit_heads WHERE chain_seq > sealed_seq",
        )
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        let mut sealed = 0;
        for tenant in tenants {
            let tenant: TenantId = parse_id("tenant_id", &tenant)?;
            let mut tx = self.write(&tenant).await?;
            let wrote = checkpoint_in(&mut tx, &tenant, key.as_ref()).await?;
            if wrote {
                self.commit(tx).await?;
                sealed += 1;
            } else {
                done(tx).await?;
            }
        }
        Ok(sealed)
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
