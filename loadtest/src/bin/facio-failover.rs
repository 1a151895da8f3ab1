//! `facio-failover`: M sessions owned across a cluster's nodes, one node killed with
//! SIGKILL, and for each of its sessions the time from the kill until a turn sent
//! through a survivor is answered again.

use std::time::Duration;

use clap::Parser;
use facio_loadtest::api::Gateway;
use facio_loadtest::failover::{
    kill_9, membership_lapse, node_ids, open_sessions, recover, wait_for_members,
};
use facio_loadtest::stats::{Samples, millis};

#[derive(Parser)]
#[command(about = "kill -9 one node of a cluster; time until its sessions answer again")]
struct Args {
    /// The nodes' base URLs, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    url: Vec<String>,
    /// The nodes' pids, in the same order.
    #[arg(long, value_delimiter = ',', required = true)]
    pid: Vec<u32>,
    /// The management token (also the chat turns' bearer token).
    #[arg(long, env = "FACIO_MANAGEMENT_TOKEN")]
    token: String,
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Sessions opened at once.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// The node to kill (index into --url).
    #[arg(long, default_value_t = 0)]
    victim: usize,
    /// Pause between a dead node's session's tries, in milliseconds.
    #[arg(long, default_value_t = 100)]
    retry_ms: u64,
    /// Give up on a session this long after the kill, in seconds.
    #[arg(long, default_value_t = 60)]
    deadline_s: u64,
    /// Prefix of the session keys (one per repetition keeps them apart).
    #[arg(long, default_value = "failover")]
    prefix: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.len() == args.pid.len() && args.url.len() >= 2 && args.victim < args.url.len(),
        "give two or more nodes, as many pids, and a victim among them"
    );
    let client = Gateway::client(64, Duration::from_secs(30))?;
    let nodes: Vec<Gateway> = args
        .url
        .iter()
        .map(|u| Gateway::new(u, Some(args.token.clone()), client.clone()))
        .collect();
    let ids = node_ids(&nodes).await.map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        wait_for_members(&nodes, &ids, Duration::from_secs(60)).await,
        "the nodes did not all see each other within 60 s"
    );

    let keys: Vec<String> = (0..args.sessions)
        .map(|i| format!("{}:{i}", args.prefix))
        .collect();
    let owners = open_sessions(&nodes, &keys, args.concurrency)
        .await
        .map_err(anyhow::Error::msg)?;
    let owned: Vec<usize> = ids
        .iter()
        .map(|id| owners.iter().filter(|(_, n)| n == id).count())
        .collect();
    let dead_id = ids[args.victim].clone();
    let dead: Vec<String> = owners
        .iter()
        .filter(|(_, n)| *n == dead_id)
        .map(|(k, _)| k.clone())
        .collect();
    anyhow::ensure!(!dead.is_empty(), "{dead_id} holds none of the sessions");
    let survivors: Vec<Gateway> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != args.victim)
        .map(|(_, g)| g.clone())
        .collect();

    let killed = kill_9(args.pid[args.victim])?;
    let every = Duration::from_millis(args.retry_ms);
    let deadline = Duration::from_secs(args.deadline_s);
    let lapse = membership_lapse(&survivors[0], &dead_id, killed, deadline);
    let recovered = futures::future::join_all(
        dead.iter()
            .map(|key| recover(&survivors, key.clone(), killed, every, deadline)),
    );
    let (lapse, recovered) = tokio::join!(lapse, recovered);

    let mut times = Vec::new();
    let (mut failed, mut attempts, mut first_failure, mut first_error) = (0, 0, None, None);
    for r in &recovered {
        match r {
            Ok(r) => {
                times.push(r.after);
                attempts += r.attempts;
                if first_failure.is_none() {
                    first_failure.clone_from(&r.first_failure);
                }
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.clone());
            }
        }
    }
    let samples = Samples::new(times.clone());
    println!("nodes                            {}", ids.join(", "));
    println!(
        "sessions per node                {}",
        owned
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "killed                           {dead_id} ({} sessions)",
        dead.len()
    );
    println!(
        "answered again / failed          {} / {failed} ({attempts} turns sent, every {} ms)",
        samples.len(),
        args.retry_ms
    );
    println!(
        "kill → answered min / p50 / p90 / p99 / max  {:.0} / {:.0} / {:.0} / {:.0} / {:.0} ms",
        millis(samples.percentile(0.0)),
        millis(samples.percentile(50.0)),
        millis(samples.percentile(90.0)),
        millis(samples.percentile(99.0)),
        millis(samples.max())
    );
    println!(
        "kill → left the membership       {}",
        lapse.map_or("not within the deadline".to_owned(), |d| format!(
            "{:.0} ms",
            millis(d)
        ))
    );
    if let Some(f) = &first_failure {
        println!("first refusal                    {f}");
    }
    if let Some(e) = &first_error {
        println!("first session not answered       {e}");
    }
    let summary = serde_json::json!({
        "killed": dead_id, "sessionsPerNode": owned, "deadSessions": dead.len(),
        "answered": samples.len(), "failed": failed,
        "msAfterKill": times.iter().map(|d| millis(*d)).collect::<Vec<_>>(),
        "membershipLapseMs": lapse.map(millis),
    });
    println!("{summary}");
    anyhow::ensure!(failed == 0, "{failed} sessions did not answer again");
    Ok(())
}
