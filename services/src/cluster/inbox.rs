//! Each node's inbox: the Redis Stream `facio:inbox:<node>`, read by its node through
//! the consumer group `facio`. What one node has to tell the node holding a session
//! (a review of it closed on another node, a scheduled job gave it a turn) is written
//! to the store first and then added here; the holder acknowledges an entry only once
//! it has handled it, so an
//! entry its node died holding stays pending, and a live node claims it once the dead
//! node's registration is gone. Handlers see each entry id once per process; the work
//! an entry points at is read from the store, so a repeat does nothing. Without Redis
//! nothing is lost: every node's sweep finds the same work in the store.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{ClusterError, Membership, scan, scrub};
use crate::domain::{NodeId, SessionKey, TenantId};

/// Where node inboxes live in Redis.
pub(super) const INBOX_PREFIX: &str = "facio:inbox:";
/// The consumer group every inbox is read through.
const GROUP: &str = "facio";
/// The field an entry's JSON is stored under.
const FIELD: &str = "entry";
/// Entries read at once.
const BATCH: usize = 100;
/// How long one read waits for entries.
const BLOCK: Duration = Duration::from_secs(2);
/// Entry ids remembered for deduplication.
const SEEN: usize = 16_384;
/// An inbox is trimmed to about this many entries (acknowledged ones are deleted at
/// once; this bounds one whose node never reads it).
const MAX_LEN: usize = 100_000;

/// Something the node holding a session should look at now. The store has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboxEntry {
    pub tenant: TenantId,
    pub session_key: SessionKey,
    /// The W3C `traceparent` of what wrote the entry (a decision), so the work it
    /// starts on the holding node is part of the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// What became of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done with: acknowledged and deleted.
    Done,
    /// Not yet (the session is still held by a node that is gone): it stays pending
    /// and is claimed again later.
    Later,
}

/// Carries out inbox entries on this node.
#[async_trait]
pub trait InboxHandler: Send + Sync {
    async fn handle(&self, entry: InboxEntry) -> Handled;
}

impl Membership {
    /// Adds `entry` to `node`'s inbox. Returns the entry's id.
    pub async fn send(&self, node: &NodeId, entry: &InboxEntry) -> Result<String, ClusterError> {
        let text = serde_json::to_string(entry).map_err(|e| self.redis_error(e.to_string()))?;
        let mut conn = self.redis.clone();
        redis::cmd("XADD")
            .arg(inbox_key(node))
            .arg("MAXLEN")
            .arg("~")
            .arg(MAX_LEN)
            .arg("*")
            .arg(FIELD)
            .arg(text)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.redis_error(e.to_string()))
    }

    /// Reads this node's inbox until `stop`, handing every entry to `handler`, and
    /// every third of the TTL claims what the inboxes of departed nodes still hold.
    /// A Redis failure is retried every second; entries written meanwhile wait in
    /// Redis, and what was lost with Redis is found by the sweep in the store.
    pub fn read_inbox(
        self: &Arc<Self>,
        handler: Arc<dyn InboxHandler>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let membership = self.clone();
        tokio::spawn(async move {
            let mut reader = Reader {
                membership,
                handler,
                seen: Seen::default(),
                conn: None,
                backlog: true,
                last_claim: tokio::time::Instant::now(),
            };
            loop {
                let step = tokio::select! {
                    () = stop.cancelled() => return,
                    step = reader.step() => step,
                };
                if let Err(e) = step {
                    tracing::warn!(error = %scrub(&e.to_string()), "cannot read this node's inbox; retrying");
                    reader.conn = None;
                    reader.backlog = true;
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        })
    }

    fn redis_error(&self, reason: String) -> ClusterError {
        ClusterError::Redis {
            url: self.url.clone(),
            reason: scrub(&reason),
        }
    }
}

fn inbox_key(node: &NodeId) -> String {
    format!("{INBOX_PREFIX}{node}")
}

/// Entry ids handled lately (per inbox), oldest first out.
#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    /// Whether `id` is new (and remembers it).
    fn first(&mut self, id: &str) -> bool {
        if !self.set.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > SEEN
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

struct Reader {
    membership: Arc<Membership>,
    handler: Arc<dyn InboxHandler>,
    seen: Seen,
    /// Its own connection: a blocking read holds a connection up.
    conn: Option<redis::aio::MultiplexedConnection>,
    /// Whether entries delivered to this node before (an earlier life of it, or
    /// before a failure) may still be pending.
    backlog: bool,
    last_claim: tokio::time::Instant,
}

impl Reader {
    async fn connection(&mut self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(BLOCK + Duration::from_secs(3)));
        let conn = self
            .membership
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    async fn step(&mut self) -> redis::RedisResult<()> {
        let mut conn = self.connection().await?;
        let me = self.membership.me();
        let key = inbox_key(&me);
        ensure_group(&mut conn, &key).await?;
        // What was delivered here and not acknowledged (a crash, a failed read) first,
        // then new entries, waiting for them a while.
        let (from, block) = if self.backlog {
            ("0", None)
        } else {
            (">", Some(BLOCK))
        };
        let entries = read_group(&mut conn, &key, me.as_str(), from, block).await?;
        self.backlog = false;
        self.handle_all(&mut conn, &key, entries).await?;
        // Handled entries are deleted: what the stream still holds is the backlog.
        let left: u64 = redis::cmd("XLEN").arg(&key).query_async(&mut conn).await?;
        crate::telemetry::metrics().inbox_backlog.record(left, &[]);
        let every = self.membership.ttl / 3;
        if self.last_claim.elapsed() >= every {
            self.last_claim = tokio::time::Instant::now();
            // Entries left for later come round again with the pending ones.
            self.backlog = true;
            self.claim_departed(&mut conn).await?;
        }
        Ok(())
    }

    async fn handle_all(
        &mut self,
        conn: &mut redis::aio::MultiplexedConnection,
        key: &str,
        entries: Vec<(String, Option<InboxEntry>)>,
    ) -> redis::RedisResult<usize> {
        let mut later = 0;
        for (id, entry) in entries {
            let handled = match entry {
                Some(entry) if self.seen.first(&format!("{key}/{id}")) => {
                    let handled = self.handler.handle(entry.clone()).await;
                    if handled == Handled::Later {
                        // Let it come round again.
                        self.seen.set.remove(&format!("{key}/{id}"));
                    }
                    handled
                }
                // A repeat, or an entry no node can read: done with.
                Some(_) => Handled::Done,
                None => {
                    tracing::warn!(inbox = %key, entry = %id, "dropping an inbox entry that cannot be read");
                    Handled::Done
                }
            };
            match handled {
                Handled::Done => {
                    redis::pipe()
                        .cmd("XACK")
                        .arg(key)
                        .arg(GROUP)
                        .arg(&id)
                        .ignore()
                        .cmd("XDEL")
                        .arg(key)
                        .arg(&id)
                        .ignore()
                        .query_async::<()>(conn)
                        .await?;
                }
                Handled::Later => later += 1,
            }
        }
        Ok(later)
    }

    /// Takes over what the inboxes of nodes no longer registered hold: entries never
    /// read and entries read but not acknowledged (idle for a TTL, so two nodes do not
    /// both take them at once). An emptied inbox of a departed node is deleted.
    async fn claim_departed(
        &mut self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<()> {
        if !self.membership.connected() {
            return Ok(());
        }
        let me = self.membership.me();
        let live: HashSet<String> = self
            .membership
            .live()
            .into_iter()
            .map(|n| inbox_key(&n.id))
            .collect();
        let departed = scan(conn, INBOX_PREFIX)
            .await?
            .into_iter()
            .filter(|k| !live.contains(k));
        let idle = u64::try_from(self.membership.ttl.as_millis()).unwrap_or(u64::MAX);
        for key in departed {
            ensure_group(conn, &key).await?;
            let unread = read_group(conn, &key, me.as_str(), ">", None).await?;
            let mut later = self.handle_all(conn, &key, unread).await?;
            let value: Value = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(GROUP)
                .arg(me.as_str())
                .arg(idle)
                .arg("0")
                .arg("COUNT")
                .arg(BATCH)
                .query_async(conn)
                .await?;
            let claimed = match value {
                Value::Array(parts) => parts.into_iter().nth(1).map(entries).unwrap_or_default(),
                _ => Vec::new(),
            };
            if !claimed.is_empty() {
                tracing::info!(inbox = %key, entries = claimed.len(), "claimed what a departed node's inbox held");
            }
            later += self.handle_all(conn, &key, claimed).await?;
            let left: usize = redis::cmd("XLEN").arg(&key).query_async(conn).await?;
            if later == 0 && left == 0 {
                redis::cmd("DEL").arg(&key).query_async::<()>(conn).await?;
            }
        }
        Ok(())
    }
}

/// Creates the consumer group of `key` (and the stream) unless it exists.
async fn ensure_group(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// One XREADGROUP of `key` as `consumer` from `from` ("0": its pending entries, ">":
/// new ones), waiting up to `block` for new ones.
async fn read_group(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    consumer: &str,
    from: &str,
    block: Option<Duration>,
) -> redis::RedisResult<Vec<(String, Option<InboxEntry>)>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(BATCH);
    if let Some(block) = block {
        cmd.arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(2000));
    }
    let value: Value = cmd
        .arg("STREAMS")
        .arg(key)
        .arg(from)
        .query_async(conn)
        .await?;
    // Nil (nothing within the block time), or [[key, [[id, [field, value, ...]], ...]]]
    // (RESP2), or a map of key to entries (RESP3).
    let streams = match value {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    Ok(streams.into_iter().flat_map(entries).collect())
}

/// `[[id, [field, value, ...]], ...]` as ids and entries (`None`: unreadable, or
/// deleted while pending).
fn entries(value: Value) -> Vec<(String, Option<InboxEntry>)> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else {
                return None;
            };
            if pair.len() != 2 {
                return None;
            }
            let fields = pair.pop()?;
            let id = text(pair.pop()?)?;
            let entry = match fields {
                Value::Array(fields) => fields
                    .chunks(2)
                    .find(|kv| kv.first().cloned().and_then(text).as_deref() == Some(FIELD))
                    .and_then(|kv| kv.get(1).cloned().and_then(text))
                    .and_then(|json| serde_json::from_str(&json).ok()),
                Value::Map(fields) => fields
                    .into_iter()
                    .find(|(k, _)| text(k.clone()).as_deref() == Some(FIELD))
                    .and_then(|(_, v)| text(v))
                    .and_then(|json| serde_json::from_str(&json).ok()),
                _ => None,
            };
            Some((id, entry))
        })
        .collect()
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cluster::NodeInfo;

    /// Records what it was handed; answers `Later` for the first `later` entries.
    struct Recorder {
        seen: Mutex<Vec<InboxEntry>>,
        later: Mutex<usize>,
        tx: tokio::sync::mpsc::UnboundedSender<InboxEntry>,
    }

    #[async_trait]
    impl InboxHandler for Recorder {
        async fn handle(&self, entry: InboxEntry) -> Handled {
            let mut later = self.later.lock().unwrap();
            if *later > 0 {
                *later -= 1;
                return Handled::Later;
            }
            self.seen.lock().unwrap().push(entry.clone());
            let _ = self.tx.send(entry);
            Handled::Done
        }
    }

    fn entry(key: &str) -> InboxEntry {
        InboxEntry {
            traceparent: None,
            tenant: TenantId::default_tenant(),
            session_key: SessionKey::new(key).unwrap(),
        }
    }

    async fn join(url: &str, id: &str, stop: &CancellationToken) -> Arc<Membership> {
        let me = NodeInfo {
            id: NodeId::new(id).unwrap(),
            advertise_url: format!("http://{id}.invalid"),
            started_at: chrono::Utc::now(),
            sessions: 0,
            draining: false,
        };
        Membership::join(
            url,
            me,
            Duration::from_secs(1),
            Arc::new(|| 0),
            stop.clone(),
        )
        .await
        .unwrap()
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<InboxEntry>) -> InboxEntry {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an entry within 20 s")
            .unwrap()
    }

    /// An entry sent to a node is handled there once; one left in the inbox of a node
    /// that died is claimed by a live node, and one a handler put off comes back.
    #[tokio::test]
    async fn entries_reach_their_node_once_and_survive_its_death() {
        let Ok(base) = std::env::var("FACIO_TEST_REDIS_URL") else {
            eprintln!("skipped: FACIO_TEST_REDIS_URL is not set (tests/run.sh sets it)");
            return;
        };
        // A database of its own: the claim looks at every inbox in it.
        let url = format!("{}/9", base.trim_end_matches('/'));
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("FLUSHDB")
            .query_async::<()>(&mut raw)
            .await
            .unwrap();

        let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
        let a = join(&url, "inbox-a", &stop_a).await;
        let b = join(&url, "inbox-b", &stop_b).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = Arc::new(Recorder {
            seen: Mutex::default(),
            later: Mutex::new(1),
            tx,
        });
        let reading = b.read_inbox(recorder.clone(), stop_b.clone());

        // Sent to b: handled by b, though the first try put it off.
        let node_b = NodeId::new("inbox-b").unwrap();
        a.send(&node_b, &entry("one")).await.unwrap();
        assert_eq!(next(&mut rx).await, entry("one"));

        // Sent to a, which never reads its inbox and then dies: b claims it.
        let node_a = NodeId::new("inbox-a").unwrap();
        b.send(&node_a, &entry("two")).await.unwrap();
        stop_a.cancel();
        assert_eq!(next(&mut rx).await, entry("two"));
        // The departed node's emptied inbox goes.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let exists: bool = redis::cmd("EXISTS")
                .arg(inbox_key(&node_a))
                .query_async(&mut raw)
                .await
                .unwrap();
            if !exists {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the dead inbox stays"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Nothing was handled twice, and nothing is left pending.
        assert_eq!(recorder.seen.lock().unwrap().len(), 2);
        let pending: Value = redis::cmd("XPENDING")
            .arg(inbox_key(&node_b))
            .arg(GROUP)
            .query_async(&mut raw)
            .await
            .unwrap();
        match pending {
            Value::Array(parts) => assert_eq!(parts.first(), Some(&Value::Int(0))),
            other => panic!("XPENDING answered {other:?}"),
        }
        stop_b.cancel();
        let _ = reading.await;
    }
}
