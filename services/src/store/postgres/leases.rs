//! Session leases on PostgreSQL, timed by the database's clock (`now()`), so nodes
//! whose clocks disagree still agree on who holds a session.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PostgresStore;
use crate::domain::{NodeId, SessionKey, TenantId};
use crate::store::{Epoch, Lease, LeaseRepository, StoreError};

fn seconds(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

fn parse(
    tenant: &TenantId,
    key: &SessionKey,
    (owner, epoch, expires_at): (String, i64, DateTime<Utc>),
) -> Result<Lease, StoreError> {
    Ok(Lease {
        tenant: tenant.clone(),
        session_key: key.clone(),
        owner: NodeId::new(&owner)
            .map_err(|e| StoreError::Corrupt(format!("session_leases.owner {owner:?}: {e}")))?,
        epoch: Epoch::from_stored(epoch),
        expires_at,
    })
}

#[async_trait]
impl LeaseRepository for PostgresStore {
    async fn take_lease(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        owner: &NodeId,
        gone: Option<&NodeId>,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let mut tx = self.write(tenant).await?;
        // One statement decides: insert, or take over a lease that expired, was ours
        // or is held by `gone`; any other live lease is left alone (no row comes back).
        let taken: Option<(String, i64, DateTime<Utc>)> = sqlx::query_as(
            "INSERT INTO session_leases (tenant_id, session_key, owner, epoch, expires_at) \
             VALUES ($1, $2, $3, 1, now() + make_interval(secs => $4)) \
             ON CONFLICT (tenant_id, session_key) DO UPDATE SET \
             owner = excluded.owner, epoch = session_leases.epoch + 1, \
             expires_at = excluded.expires_at \
             WHERE session_leases.owner = excluded.owner OR session_leases.expires_at <= now() \
             OR session_leases.owner = $5 \
             RETURNING owner, epoch, expires_at",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(owner.as_str())
        .bind(seconds(ttl))
        .bind(gone.map(NodeId::as_str))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(taken) = taken else {
            let (holder, until): (String, DateTime<Utc>) = sqlx::query_as(
                "SELECT owner, expires_at FROM session_leases \
                 WHERE tenant_id = $1 AND session_key = $2",
            )
            .bind(tenant.as_str())
            .bind(key.as_str())
            .fetch_one(&mut *tx)
            .await?;
            return Err(StoreError::LeaseHeld {
                session: key.to_string(),
                owner: holder,
                until: until.to_rfc3339(),
            });
        };
        self.commit(tx).await?;
        parse(tenant, key, taken)
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let mut tx = self.write(&lease.tenant).await?;
        let renewed: Option<(String, i64, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE session_leases SET expires_at = now() + make_interval(secs => $4) \
             WHERE tenant_id = $1 AND session_key = $2 AND epoch = $3 \
             RETURNING owner, epoch, expires_at",
        )
        .bind(lease.tenant.as_str())
        .bind(lease.session_key.as_str())
        .bind(lease.epoch.get())
        .bind(seconds(ttl))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(renewed) = renewed else {
            return Err(StoreError::Fenced {
                session: lease.session_key.to_string(),
                epoch: lease.epoch.get(),
            });
        };
        self.commit(tx).await?;
        parse(&lease.tenant, &lease.session_key, renewed)
    }

    async fn renew_leases(&self, owner: &NodeId, ttl: Duration) -> Result<u64, StoreError> {
        let mut tx = self.write_leases_of_node().await?;
        let renewed = sqlx::query(
            // Every lease still the owner's and not given back (released leases end
            // at the epoch), expired or not: a stall longer than the time to live
            // must not leave the node's live sessions unleased.
            "UPDATE session_leases SET expires_at = now() + make_interval(secs => $2) \
             WHERE owner = $1 AND expires_at > 'epoch'::timestamptz",
        )
        .bind(owner.as_str())
        .bind(seconds(ttl))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.commit(tx).await?;
        Ok(renewed)
    }

    async fn release_leases(&self, owner: &NodeId) -> Result<u64, StoreError> {
        let mut tx = self.write_leases_of_node().await?;
        let released = sqlx::query(
            "UPDATE session_leases SET expires_at = 'epoch'::timestamptz \
             WHERE owner = $1 AND expires_at > 'epoch'::timestamptz",
        )
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.commit(tx).await?;
        Ok(released)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut tx = self.write(&lease.tenant).await?;
        sqlx::query(
            "UPDATE session_leases SET expires_at = 'epoch'::timestamptz \
             WHERE tenant_id = $1 AND session_key = $2 AND epoch = $3",
        )
        .bind(lease.tenant.as_str())
        .bind(lease.session_key.as_str())
        .bind(lease.epoch.get())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    async fn get_lease(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Option<Lease>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let row: Option<(String, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT owner, epoch, expires_at FROM session_leases \
             WHERE tenant_id = $1 AND session_key = $2",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        super::done(tx).await?;
        row.map(|row| parse(tenant, key, row)).transpose()
    }
}
