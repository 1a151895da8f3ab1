//! Cluster membership: each node registers itself in Redis under a key that expires
//! unless renewed, and reads everyone else's. Membership only says who is alive and
//! where to reach them; which node runs a session is decided by the store's fenced
//! session lease. Rendezvous hashing over the live nodes suggests an owner for a
//! session nobody holds.

mod inbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::domain::{NodeId, SessionKey, TenantId};
use crate::store::redact_url;

pub use inbox::{Handled, InboxEntry, InboxHandler};

/// Where node registrations live in Redis.
const NODE_PREFIX: &str = "facio:node:";

/// One node as it registered itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: NodeId,
    pub advertise_url: String,
    pub started_at: DateTime<Utc>,
    /// Sessions this node held in memory (and so the leases of) at its last renewal.
    pub sessions: usize,
    /// Shutting down: it finishes what it holds and takes no new sessions.
    #[serde(default)]
    pub draining: bool,
}

/// Why membership could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster.redisUrl {url}: {reason}")]
    Redis { url: String, reason: String },
    #[error("cannot build the HTTP client nodes forward requests with: {0}")]
    Forwarding(String),
    #[error("another live node already registered as {0}: give each node its own cluster.nodeId")]
    DuplicateNode(NodeId),
}

#[derive(Default)]
struct View {
    /// Live nodes at the last successful read, this one included.
    live: Vec<NodeInfo>,
    /// Every node ever seen, by id: where to reach the owner of a lease even while
    /// Redis is unreachable.
    known: HashMap<NodeId, String>,
    /// Whether the last exchange with Redis worked.
    connected: bool,
    /// Since when the membership has been read without a break (a Redis that came
    /// back holds no registrations until every node has renewed its own).
    connected_since: Option<std::time::Instant>,
}

/// This node's membership: its registration, renewed every third of the TTL, and the
/// view of the others, refreshed as often.
pub struct Membership {
    me: RwLock<NodeInfo>,
    ttl: Duration,
    view: RwLock<View>,
    redis: redis::aio::ConnectionManager,
    /// Opens the inbox reader's own connection (its blocking reads would hold up
    /// everything else on a shared one).
    client: redis::Client,
    url: String,
    /// Bumped whenever the set of live nodes changes.
    generation: AtomicU64,
}

impl Membership {
    /// Connects to Redis, registers this node (refusing an id another live node holds)
    /// and starts renewing until `stop`. `sessions` reports how many sessions this
    /// node holds, for the registration.
    pub async fn join(
        url: &str,
        me: NodeInfo,
        ttl: Duration,
        sessions: Arc<dyn Fn() -> usize + Send + Sync>,
        stop: CancellationToken,
    ) -> Result<Arc<Membership>, ClusterError> {
        let masked = redact_url(url);
        if let Ok(parsed) = reqwest::Url::parse(url)
            && let Some(password) = parsed.password()
        {
            crate::vault::remember(password);
        }
        let fail = |e: redis::RedisError| ClusterError::Redis {
            url: masked.clone(),
            reason: scrub(&e.to_string()),
        };
        let client = redis::Client::open(url).map_err(fail)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let redis = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(fail)?;
        let membership = Arc::new(Membership {
            me: RwLock::new(me.clone()),
            ttl,
            view: RwLock::new(View::default()),
            redis,
            client,
            url: masked.clone(),
            generation: AtomicU64::new(0),
        });
        // A live registration under this id from another process means two nodes
        // would share leases: refuse. Our own earlier life (same advertise URL) may
        // still be registered after a kill -9; that one is ours to replace.
        let key = format!("{NODE_PREFIX}{}", me.id);
        let mut conn = membership.redis.clone();
        let existing: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(fail)?;
        if let Some(text) = existing
            && let Ok(other) = serde_json::from_str::<NodeInfo>(&text)
            && other.advertise_url != me.advertise_url
        {
            return Err(ClusterError::DuplicateNode(me.id));
        }
        membership.renew().await.map_err(fail)?;
        membership.refresh().await.map_err(fail)?;
        let keep = membership.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(keep.ttl / 3);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => {}
                }
                if let Ok(mut me) = keep.me.write() {
                    me.sessions = sessions();
                }
                let worked = match keep.renew().await {
                    Ok(()) => keep.refresh().await,
                    Err(e) => Err(e),
                };
                keep.note(worked);
            }
            keep.leave().await;
        });
        Ok(membership)
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
            .read()
            .map(|me| me.id.clone())
            .unwrap_or_else(|p| p.into_inner().id.clone())
    }

    /// The live nodes as last seen (this one always among them).
    pub fn live(&self) -> Vec<NodeInfo> {
        let mut live = self.view.read().map(|v| v.live.clone()).unwrap_or_default();
        // This node as it is now, not as last read back.
        if let Ok(me) = self.me.read() {
            live.retain(|n| n.id != me.id);
            live.push(me.clone());
        }
        live.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        live
    }

    /// The registration TTL in whole seconds (at least 1).
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs().max(1)
    }

    /// Whether the last exchange with Redis worked.
    pub fn connected(&self) -> bool {
        self.view.read().is_ok_and(|v| v.connected)
    }

    /// Where `node` can be reached, if it was ever seen.
    pub fn url_of(&self, node: &NodeId) -> Option<String> {
        self.view
            .read()
            .ok()
            .and_then(|v| v.known.get(node).cloned())
    }

    /// Whether `node` is registered and alive as last seen. While Redis cannot be
    /// reached, every node ever seen counts as alive: the store's leases tell who
    /// holds what, and a dead node's leases run out.
    pub fn is_live(&self, node: &NodeId) -> bool {
        if !self.connected() {
            return self.url_of(node).is_some() || *node == self.me();
        }
        self.live().iter().any(|n| &n.id == node)
    }

    /// The live node rendezvous hashing prefers for a session. While Redis cannot be
    /// reached, this node: every node then takes up unheld work, and the lease lets
    /// one of them have it.
    pub fn preferred(&self, tenant: &TenantId, key: &SessionKey) -> NodeId {
        if !self.connected() {
            return self.me();
        }
        let live = self.live();
        // Draining nodes take no new sessions (unless every node is draining).
        let open = live.iter().filter(|n| !n.draining).map(|n| &n.id);
        preferred(open, tenant, key)
            .or_else(|| preferred(live.iter().map(|n| &n.id), tenant, key))
            .unwrap_or_else(|| self.me())
    }

    /// Whether `node` is known to be gone: the membership has been read without a
    /// break for a whole TTL (long enough for every live node to have registered again
    /// after Redis came back empty) and `node` is not registered.
    pub fn knows_gone(&self, node: &NodeId) -> bool {
        let settled = self.view.read().is_ok_and(|v| {
            v.connected && v.connected_since.is_some_and(|at| at.elapsed() >= self.ttl)
        });
        settled && !self.is_live(node)
    }

    /// Whether `node` said, at the last look, that it is draining.
    pub fn is_draining(&self, node: &NodeId) -> bool {
        self.live().iter().any(|n| &n.id == node && n.draining)
    }

    /// Marks this node as draining, at once in Redis: the others stop sending it new
    /// sessions.
    pub async fn drain(&self) {
        if let Ok(mut me) = self.me.write() {
            me.draining = true;
        }
        let worked = self.renew().await;
        self.note(worked);
    }

    /// A number that changes whenever the live nodes change (or Redis comes back):
    /// whoever divides work by [`Membership::preferred`] looks again when it moved.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Re-reads the live nodes now (the periodic refresh does this every third of the
    /// TTL).
    pub async fn refresh_now(&self) {
        let worked = self.refresh().await;
        self.note(worked);
    }

    fn note(&self, worked: redis::RedisResult<()>) {
        let was = self.connected();
        match worked {
            Ok(()) if !was => tracing::info!(redis = %self.url, "cluster membership is reachable"),
            Ok(()) => {}
            Err(e) => {
                if let Ok(mut view) = self.view.write() {
                    view.connected = false;
                }
                if was {
                    tracing::warn!(redis = %self.url, error = %scrub(&e.to_string()),
                        "cannot reach the cluster's Redis; sessions keep their owners and work goes on from the store");
                }
            }
        }
    }

    async fn renew(&self) -> redis::RedisResult<()> {
        let me = self
            .me
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let text = serde_json::to_string(&me).unwrap_or_default();
        let mut conn = self.redis.clone();
        let millis = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        redis::cmd("SET")
            .arg(format!("{NODE_PREFIX}{}", me.id))
            .arg(text)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut conn)
            .await
    }

    async fn refresh(&self) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        let keys = scan(&mut conn, NODE_PREFIX).await?;
        let values: Vec<Option<String>> = if keys.is_empty() {
            Vec::new()
        } else {
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?
        };
        let live: Vec<NodeInfo> = values
            .into_iter()
            .flatten()
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect();
        if let Ok(mut view) = self.view.write() {
            let ids = |nodes: &[NodeInfo]| {
                let mut ids: Vec<NodeId> = nodes.iter().map(|n| n.id.clone()).collect();
                ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                ids
            };
            if !view.connected || ids(&view.live) != ids(&live) {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            for node in &live {
                view.known
                    .insert(node.id.clone(), node.advertise_url.clone());
            }
            view.live = live;
            if !view.connected {
                view.connected_since = Some(std::time::Instant::now());
            }
            view.connected = true;
        }
        Ok(())
    }

    /// Removes this node's registration (a drained node is gone at once, not after
    /// its TTL). Stop the renewal first (the `stop` token given to `join`).
    pub async fn leave(&self) {
        let mut conn = self.redis.clone();
        let key = format!("{NODE_PREFIX}{}", self.me());
        if let Err(e) = redis::cmd("DEL")
            .arg(key)
            .query_async::<()>(&mut conn)
            .await
        {
            tracing::warn!(error = %scrub(&e.to_string()), "cannot deregister from the cluster");
        }
    }
}

/// Every key starting with `prefix`.
async fn scan<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    prefix: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// `text` with every known secret (the Redis password among them) masked.
fn scrub(text: &str) -> String {
    crate::vault::redact_known(text).unwrap_or_else(|| text.to_owned())
}

/// The node rendezvous (highest-random-weight) hashing picks for a session among
/// `nodes`: every node computes the same answer from the same set, and a departure
/// moves only the departed node's sessions.
pub fn preferred<'a>(
    nodes: impl IntoIterator<Item = &'a NodeId>,
    tenant: &TenantId,
    key: &SessionKey,
) -> Option<NodeId> {
    use sha2::{Digest, Sha256};
    nodes
        .into_iter()
        .max_by_key(|node| {
            let mut hash = Sha256::new();
            hash.update(node.as_str().as_bytes());
            hash.update([0]);
            hash.update(tenant.as_str().as_bytes());
            hash.update([0]);
            hash.update(key.as_str().as_bytes());
            let digest = hash.finalize();
            let mut weight = [0u8; 8];
            weight.copy_from_slice(&digest[..8]);
            (u64::from_be_bytes(weight), node.as_str().to_owned())
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).unwrap()
    }

    #[test]
    fn rendezvous_moves_only_the_departed_nodes_sessions() {
        let all = [node("a"), node("b"), node("c")];
        let tenant = TenantId::default_tenant();
        let mut moved = 0;
        let mut spread = HashMap::new();
        for i in 0..300 {
            let key = SessionKey::new(format!("s{i}")).unwrap();
            let before = preferred(all.iter(), &tenant, &key).unwrap();
            *spread.entry(before.clone()).or_insert(0) += 1;
            let after = preferred(all.iter().filter(|n| n.as_str() != "b"), &tenant, &key).unwrap();
            if before != after {
                assert_eq!(before.as_str(), "b", "only b's sessions move");
                moved += 1;
            }
        }
        assert_eq!(moved, spread[&node("b")]);
        assert!(spread.values().all(|&n| n > 50), "spread: {spread:?}");
        assert_eq!(
            preferred(std::iter::empty(), &tenant, &SessionKey::new("x").unwrap()),
            None
        );
    }
}
