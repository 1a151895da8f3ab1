//! Session leases on SQLite. One node serves a SQLite file (the data-dir lock sees
//! to that), so its own clock is the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, now, parse_id, parse_ts, ts};
use crate::domain::{NodeId, SessionKey, TenantId};
use crate::store::{Epoch, Lease, LeaseRepository, RunScope, StoreError};

/// A lease given back expires at the start of time, which marks it released (the
/// heartbeat renews every other lease of its owner, even one that ran out).
const RELEASED: &str = "1970-01-01T00:00:00.000000Z";

fn until(ttl: Duration) -> chrono::DateTime<chrono::Utc> {
    now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

/// Inside a step's transaction: the step's writer still holds the session at its
/// epoch, else [`StoreError::Fenced`] and the step writes nothing.
pub(super) async fn check_epoch_in(
    conn: &mut sqlx::SqliteConnection,
    run: &RunScope,
) -> Result<(), StoreError> {
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT epoch FROM session_leases WHERE tenant_id = ? AND session_key = ?",
    )
    .bind(run.tenant.as_str())
    .bind(run.session_key.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if current == Some(run.epoch.get()) {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            session: run.session_key.to_string(),
            epoch: run.epoch.get(),
        })
    }
}

fn lease_row(row: &sqlx::sqlite::SqliteRow) -> Result<Lease, StoreError> {
    Ok(Lease {
        tenant: parse_id("tenant_id", row.try_get("tenant_id")?)?,
        session_key: parse_id("session_key", row.try_get("session_key")?)?,
        owner: parse_id("owner", row.try_get("owner")?)?,
        epoch: Epoch::from_stored(row.try_get("epoch")?),
        expires_at: parse_ts("expires_at", row.try_get("expires_at")?)?,
    })
}

#[async_trait]
impl LeaseRepository for SqliteStore {
    async fn take_lease(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        owner: &NodeId,
        gone: Option<&NodeId>,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let (tenant, key, owner) = (tenant.clone(), key.clone(), owner.clone());
        let gone = gone.map(|g| g.as_str().to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let at = now();
                let held = sqlx::query(
                    "SELECT owner, expires_at FROM session_leases \
                     WHERE tenant_id = ? AND session_key = ?",
                )
                .bind(tenant.as_str())
                .bind(key.as_str())
                .fetch_optional(&mut *conn)
                .await?;
                if let Some(row) = held {
                    let holder: String = row.try_get("owner")?;
                    let expires = parse_ts("expires_at", row.try_get("expires_at")?)?;
                    let taken_from_gone = gone.as_deref() == Some(holder.as_str());
                    if holder != owner.as_str() && expires > at && !taken_from_gone {
                        return Err(StoreError::LeaseHeld {
                            session: key.to_string(),
                            owner: holder,
                            until: ts(&expires),
                        });
                    }
                }
                let expires_at = until(ttl);
                let epoch: i64 = sqlx::query_scalar(
                    "INSERT INTO session_leases (tenant_id, session_key, owner, epoch, expires_at) \
                     VALUES (?, ?, ?, 1, ?) \
                     ON CONFLICT (tenant_id, session_key) DO UPDATE SET \
                     owner = excluded.owner, epoch = session_leases.epoch + 1, \
                     expires_at = excluded.expires_at \
                     RETURNING epoch",
                )
                .bind(tenant.as_str())
                .bind(key.as_str())
                .bind(owner.as_str())
                .bind(ts(&expires_at))
                .fetch_one(&mut *conn)
                .await?;
                Ok(Lease {
                    tenant,
                    session_key: key,
                    owner,
                    epoch: Epoch::from_stored(epoch),
                    expires_at,
                })
            })
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let lease = lease.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let expires_at = until(ttl);
                let renewed = sqlx::query(
                    "UPDATE session_leases SET expires_at = ? \
                     WHERE tenant_id = ? AND session_key = ? AND epoch = ?",
                )
                .bind(ts(&expires_at))
                .bind(lease.tenant.as_str())
                .bind(lease.session_key.as_str())
                .bind(lease.epoch.get())
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if renewed == 0 {
                    return Err(StoreError::Fenced {
                        session: lease.session_key.to_string(),
                        epoch: lease.epoch.get(),
                    });
                }
                Ok(Lease {
                    expires_at,
                    ..lease
                })
            })
        })
        .await
    }

    async fn renew_leases(&self, owner: &NodeId, ttl: Duration) -> Result<u64, StoreError> {
        // Every lease still the owner's and not given back, expired or not: a stall
        // longer than the time to live must not leave the node's live sessions
        // unleased (one another node could take under them).
        self.execute(
            sqlx::query(
                "UPDATE session_leases SET expires_at = ? WHERE owner = ? AND expires_at > ?",
            )
            .bind(ts(&until(ttl)))
            .bind(owner.as_str())
            .bind(RELEASED),
        )
        .await
    }

    async fn release_leases(&self, owner: &NodeId) -> Result<u64, StoreError> {
        self.execute(
            sqlx::query(
                "UPDATE session_leases SET expires_at = ? WHERE owner = ? AND expires_at > ?",
            )
            .bind(RELEASED)
            .bind(owner.as_str())
            .bind(RELEASED),
        )
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE session_leases SET expires_at = ? \
                     WHERE tenant_id = ? AND session_key = ? AND epoch = ?",
                )
                .bind(RELEASED)
                .bind(lease.tenant.as_str())
                .bind(lease.session_key.as_str())
                .bind(lease.epoch.get())
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn get_lease(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Option<Lease>, StoreError> {
        let row = sqlx::query(
            "SELECT tenant_id, session_key, owner, epoch, expires_at FROM session_leases \
             WHERE tenant_id = ? AND session_key = ?",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_optional(self.read_pool())
        .await?;
        row.as_ref().map(lease_row).transpose()
    }
}
