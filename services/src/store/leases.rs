//! Session ownership: a fenced lease per session. Whoever writes a session's steps
//! holds its lease first; taking a lease bumps its epoch, and every step checks its
//! writer's epoch inside the step's own transaction, so a stale owner (a node that
//! paused past its lease, an actor that outlived a restart) writes nothing and gets
//! [`StoreError::Fenced`](crate::store::StoreError::Fenced). A single node takes
//! leases the same way; the cluster adds membership and routing, not another path.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{NodeId, SessionKey, TenantId};
use crate::store::StoreError;

/// A lease's generation: every take makes a larger one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Epoch(i64);

impl Epoch {
    /// An epoch read back from the store.
    pub fn from_stored(value: i64) -> Self {
        Self(value)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A held lease: the session, its owner, the epoch it was taken at and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub tenant: TenantId,
    pub session_key: SessionKey,
    pub owner: NodeId,
    pub epoch: Epoch,
    pub expires_at: DateTime<Utc>,
}

/// Takes, keeps and gives back session leases. Expiry is decided by the database's
/// clock (PostgreSQL's `now()`; SQLite, which serves one node, by that node's).
#[async_trait]
pub trait LeaseRepository: Send + Sync {
    /// Takes the session's lease for `owner` at a new epoch: when nobody holds it,
    /// when it expired, or when `owner` held it already (a restarted node takes its
    /// own leases back, fencing off anything left of its previous life).
    /// [`StoreError::LeaseHeld`] while another owner's lease is live.
    async fn acquire_lease(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        owner: &NodeId,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.take_lease(tenant, key, owner, None, ttl).await
    }
    /// As [`LeaseRepository::acquire_lease`], and with `gone` also when the live lease
    /// is held by `gone`: a node that left the cluster without giving its leases back
    /// (its registration lapsed). Safe before that lease runs out: the new epoch
    /// fences anything `gone` would still try to write.
    async fn take_lease(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        owner: &NodeId,
        gone: Option<&NodeId>,
        ttl: Duration,
    ) -> Result<Lease, StoreError>;
    /// Extends a held lease. [`StoreError::Fenced`] if it was taken at a newer epoch
    /// meanwhile.
    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError>;
    /// Extends every live lease `owner` holds (the node's heartbeat, one write for all
    /// its sessions); how many.
    async fn renew_leases(&self, owner: &NodeId, ttl: Duration) -> Result<u64, StoreError>;
    /// Gives the lease back (it expires now, keeping its epoch) so another owner
    /// need not wait for it to run out. Nothing happens if it was taken over already.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;
    /// Gives back every lease `owner` holds (a draining node, once its turns ended
    /// and its session actors stopped); how many.
    async fn release_leases(&self, owner: &NodeId) -> Result<u64, StoreError>;
    /// The session's lease as stored, live or not.
    async fn get_lease(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Option<Lease>, StoreError>;
}
