//! A node's failover: sessions owned across a cluster's nodes, one node killed, and
//! for each of its sessions the time from the kill to its first answered turn through
//! a survivor.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::api::{Gateway, poll};

/// Each node's id (`self` of `GET /api/v1/cluster`).
pub async fn node_ids(nodes: &[Gateway]) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(nodes.len());
    for node in nodes {
        let cluster = node.get_json("/api/v1/cluster").await?;
        let id = cluster["self"]
            .as_str()
            .ok_or("no `self` in /api/v1/cluster")?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// The ids of the live nodes `node` knows.
pub async fn members(node: &Gateway) -> Option<Vec<String>> {
    let cluster = node.get_json("/api/v1/cluster").await.ok()?;
    Some(
        cluster["nodes"]
            .as_array()?
            .iter()
            .filter_map(|n| n["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// Waits until every node lists all of `ids` as live.
pub async fn wait_for_members(nodes: &[Gateway], ids: &[String], timeout: Duration) -> bool {
    poll(timeout, Duration::from_millis(100), || async {
        for node in nodes {
            let live = members(node).await?;
            if !ids.iter().all(|id| live.contains(id)) {
                return None;
            }
        }
        Some(())
    })
    .await
    .is_some()
}

/// Opens `keys` with one turn each, turn `i` sent to node `i mod n`; answers each
/// session's key with the id of the node that ran it (`X-Facio-Node`).
pub async fn open_sessions(
    nodes: &[Gateway],
    keys: &[String],
    concurrency: usize,
) -> Result<Vec<(String, String)>, String> {
    let results: Vec<Result<(String, String), String>> =
        futures::stream::iter(keys.iter().enumerate())
            .map(|(i, key)| async move {
                let answer = nodes[i % nodes.len()].chat(key, "hello").await?;
                if answer.status != 200 {
                    return Err(format!("{key}: {}: {}", answer.status, answer.body));
                }
                let node = answer
                    .node
                    .ok_or_else(|| format!("{key}: no X-Facio-Node"))?;
                Ok((key.clone(), node))
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    results.into_iter().collect()
}

/// SIGKILL to `pid`; the instant it was sent.
pub fn kill_9(pid: u32) -> anyhow::Result<Instant> {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    let at = Instant::now();
    anyhow::ensure!(status.success(), "kill -9 {pid} failed");
    Ok(at)
}

/// When a session of the dead node answered again.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub session: String,
    /// From the kill to the first turn answered 200.
    pub after: Duration,
    /// The node that answered it.
    pub node: String,
    /// Turns sent until then (the failed ones answered 503 or could not connect).
    pub attempts: usize,
    /// The first failure seen, if any.
    pub first_failure: Option<String>,
}

/// Sends turns for `session` through the survivors in turn, every `every` until one
/// is answered, for at most `deadline` after `killed`.
pub async fn recover(
    survivors: &[Gateway],
    session: String,
    killed: Instant,
    every: Duration,
    deadline: Duration,
) -> Result<Recovered, String> {
    let mut first_failure = None;
    for attempt in 0.. {
        let node = &survivors[attempt % survivors.len()];
        let failure = match node.chat(&session, "are you there?").await {
            Ok(answer) if answer.status == 200 => {
                return Ok(Recovered {
                    session,
                    after: killed.elapsed(),
                    node: answer.node.unwrap_or_default(),
                    attempts: attempt + 1,
                    first_failure,
                });
            }
            Ok(answer) => format!("{}: {}", answer.status, answer.body),
            Err(e) => e,
        };
        first_failure.get_or_insert(failure);
        if killed.elapsed() > deadline {
            return Err(format!(
                "{session}: no answer within {deadline:?} of the kill ({attempt} tries; first: {})",
                first_failure.unwrap_or_default()
            ));
        }
        tokio::time::sleep(every).await;
    }
    unreachable!("the loop returns")
}

/// From `killed` until `node` no longer lists `dead` as live.
pub async fn membership_lapse(
    node: &Gateway,
    dead: &str,
    killed: Instant,
    timeout: Duration,
) -> Option<Duration> {
    poll(timeout, Duration::from_millis(50), || async {
        let live = members(node).await?;
        (!live.iter().any(|id| id == dead)).then(|| killed.elapsed())
    })
    .await
}
