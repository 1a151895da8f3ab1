//! A tenant's settings, policy and credentials, kept in memory between turns.
//!
//! Every turn (and every request's admission) needs them, and they change only when an
//! operator changes them. An entry is dropped when that happens:
//!
//! - **in this process**: the management API routes that patch settings, put the
//!   policy or change credentials, and a review answer sealed as a credential, call
//!   [`TenantCache::changed`] after their write commits;
//! - **in another process** writing to the same store (the `facio` CLI next to a
//!   running gateway): nothing tells this process, so every entry is also read again
//!   once it is [`TENANT_CACHE_TTL`] old. A TTL was chosen over checking a version per
//!   use because the store keeps no cheap per-tenant version to check: any such check
//!   would be a store read per use, which is what the cache removes. A few seconds of
//!   staleness after a CLI change is the price; a change made through the API is seen
//!   at once;
//! - **on another node of a cluster**: [`TenantCache::subscribe`] hands out every local
//!   change as a [`TenantCacheEvent`] for a publisher to forward (e.g. over Redis), and a
//!   subscriber on the other nodes feeds what it receives to [`Invalidate::invalidate`].
//!   Until that exists the TTL bounds staleness there too.
//!
//! A read that raced an invalidation (it started before the change and ended after it)
//! is returned to its caller but not kept, so a stale value never outlives the change.
//! Decrypted credentials stay in memory for the TTL instead of for one turn.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::domain::{TenantId, TenantSettings};
use crate::policy::Policy;
use crate::store::{Store, StoreError};
use crate::vault::{OpenSecretsError, Secrets, Vault, tenant_secrets};

/// How long an entry is used before it is read from the store again.
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(2);

/// Local changes kept for a slow publisher before it lags (it then re-reads nothing:
/// the TTL still bounds what other nodes see).
const EVENT_BUFFER: usize = 256;

/// What changed for a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantCacheEvent {
    Settings(TenantId),
    Policy(TenantId),
    Credentials(TenantId),
}

impl TenantCacheEvent {
    pub fn tenant(&self) -> &TenantId {
        match self {
            Self::Settings(t) | Self::Policy(t) | Self::Credentials(t) => t,
        }
    }
}

/// Drops what an event makes stale. A cluster subscriber feeds remote changes here.
pub trait Invalidate: Send + Sync {
    fn invalidate(&self, event: &TenantCacheEvent);
}

/// Why the tenant's policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the stored policy cannot be read: {0}")]
    Unreadable(#[from] serde_json::Error),
}

struct Entry<T> {
    value: T,
    read_at: Instant,
}

/// One kind of value, per tenant, with a generation bumped by every invalidation.
struct Slot<T> {
    entries: Mutex<Entries<T>>,
}

struct Entries<T> {
    kept: HashMap<TenantId, Entry<T>>,
    /// How many times each tenant's entry was invalidated.
    generations: HashMap<TenantId, u64>,
}

impl<T> Entries<T> {
    fn generation(&self, tenant: &TenantId) -> u64 {
        self.generations.get(tenant).copied().unwrap_or_default()
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Entries {
                kept: HashMap::new(),
                generations: HashMap::new(),
            }),
        }
    }
}

impl<T: Clone> Slot<T> {
    async fn get<E, F>(&self, tenant: &TenantId, ttl: Duration, load: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let generation = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entries.kept.get(tenant)
                && entry.read_at.elapsed() < ttl
            {
                return Ok(entry.value.clone());
            }
            entries.generation(tenant)
        };
        let read_at = Instant::now();
        let value = load.await?;
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.generation(tenant) == generation {
            entries.kept.insert(
                tenant.clone(),
                Entry {
                    value: value.clone(),
                    read_at,
                },
            );
        }
        Ok(value)
    }

    fn invalidate(&self, tenant: &TenantId) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.kept.remove(tenant);
        *entries.generations.entry(tenant.clone()).or_default() += 1;
    }
}

/// Tenants' settings, effective policy and opened credentials (see the module docs).
pub struct TenantCache {
    ttl: Duration,
    settings: Slot<TenantSettings>,
    policy: Slot<Arc<Policy>>,
    credentials: Slot<Arc<Secrets>>,
    changes: broadcast::Sender<TenantCacheEvent>,
}

impl Default for TenantCache {
    fn default() -> Self {
        Self::with_ttl(TENANT_CACHE_TTL)
    }
}

impl TenantCache {
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            settings: Slot::default(),
            policy: Slot::default(),
            credentials: Slot::default(),
            changes: broadcast::channel(EVENT_BUFFER).0,
        }
    }

    /// The tenant's settings (`tenant_settings` of the store).
    pub async fn settings(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
    ) -> Result<TenantSettings, StoreError> {
        self.settings
            .get(tenant, self.ttl, store.tenant_settings(tenant))
            .await
    }

    /// The tenant's effective policy: its stored document, else `initial` (see
    /// [`Policy::effective`]). One parsed document serves every call until it changes,
    /// so what it compiles while matching is compiled once.
    pub async fn policy(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        initial: &Policy,
    ) -> Result<Arc<Policy>, PolicyLoadError> {
        let load = async {
            let stored = store.get_policy(tenant).await?;
            Ok(Arc::new(Policy::effective(stored, initial)?))
        };
        self.policy.get(tenant, self.ttl, load).await
    }

    /// The tenant's credentials, opened from the vault (see [`tenant_secrets`]).
    pub async fn credentials(
        &self,
        store: &dyn Store,
        vault: &Vault,
        tenant: &TenantId,
    ) -> Result<Arc<Secrets>, OpenSecretsError> {
        let load = async { tenant_secrets(store, vault, tenant).await.map(Arc::new) };
        self.credentials.get(tenant, self.ttl, load).await
    }

    /// A write in this process changed what `event` names: dropped here, and told to
    /// [`Self::subscribe`]rs (a cluster publisher).
    pub fn changed(&self, event: TenantCacheEvent) {
        self.invalidate(&event);
        // No subscriber is fine: there is no cluster to tell.
        let _ = self.changes.send(event);
    }

    /// Every change made in this process, for a publisher to forward to other nodes.
    pub fn subscribe(&self) -> broadcast::Receiver<TenantCacheEvent> {
        self.changes.subscribe()
    }
}

impl Invalidate for TenantCache {
    fn invalidate(&self, event: &TenantCacheEvent) {
        match event {
            TenantCacheEvent::Settings(t) => self.settings.invalidate(t),
            TenantCacheEvent::Policy(t) => self.policy.invalidate(t),
            TenantCacheEvent::Credentials(t) => self.credentials.invalidate(t),
        }
    }
}

impl std::fmt::Debug for TenantCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    async fn counted(slot: &Slot<u32>, reads: &AtomicU32, ttl: Duration, t: &TenantId) -> u32 {
        slot.get(t, ttl, async {
            Ok::<_, ()>(reads.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn an_entry_is_read_once_until_it_is_invalidated_or_old() {
        let (slot, reads) = (Slot::<u32>::default(), AtomicU32::new(0));
        let (acme, other) = (tenant("acme"), tenant("other"));
        let long = Duration::from_secs(3600);
        assert_eq!(counted(&slot, &reads, long, &acme).await, 1);
        assert_eq!(counted(&slot, &reads, long, &acme).await, 1, "kept");
        assert_eq!(counted(&slot, &reads, long, &other).await, 2, "per tenant");
        slot.invalidate(&acme);
        assert_eq!(counted(&slot, &reads, long, &acme).await, 3, "read again");
        assert_eq!(counted(&slot, &reads, long, &other).await, 2, "others kept");
        assert_eq!(
            counted(&slot, &reads, Duration::ZERO, &other).await,
            4,
            "old"
        );
        let failed: Result<u32, &str> =
            slot.get(&acme, Duration::ZERO, async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(
            counted(&slot, &reads, long, &acme).await,
            3,
            "a failure keeps nothing"
        );
    }

    #[tokio::test]
    async fn a_read_that_raced_an_invalidation_is_not_kept() {
        let slot = Slot::<u32>::default();
        let acme = tenant("acme");
        let long = Duration::from_secs(3600);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let read = slot.get(&acme, long, async {
            let _ = started_tx.send(());
            let _ = go_rx.await;
            Ok::<_, ()>(1)
        });
        let change = async {
            let _ = started_rx.await;
            slot.invalidate(&acme);
            let _ = go_tx.send(());
        };
        let (stale, ()) = tokio::join!(read, change);
        assert_eq!(stale, Ok(1), "the racing caller still gets its answer");
        let fresh = slot.get(&acme, long, async { Ok::<_, ()>(2) }).await;
        assert_eq!(fresh, Ok(2), "but the stale value was not kept");
    }

    #[tokio::test]
    async fn a_local_change_invalidates_and_reaches_subscribers() {
        let cache = TenantCache::default();
        let mut changes = cache.subscribe();
        cache.changed(TenantCacheEvent::Policy(tenant("acme")));
        let event = changes.recv().await.unwrap();
        assert_eq!(event, TenantCacheEvent::Policy(tenant("acme")));
        assert_eq!(event.tenant(), &tenant("acme"));
    }
}
