//! `facio-waiting`: N sessions each waiting on a human review on one gateway; its
//! memory before, while they wait and once they passivated; then a sample of the
//! reviews decided one by one, timing each run's resumption.

use std::time::Duration;

use clap::Parser;
use facio_loadtest::api::{Gateway, poll};
use facio_loadtest::memory::rss_kib;
use facio_loadtest::stats::{Samples, millis};
use facio_loadtest::waiting::{Waiting, decide_all, open_all, pending_reviews};
use rand::SeedableRng;

#[derive(Parser)]
#[command(about = "N sessions waiting on reviews; memory per waiting session; resume latency")]
struct Args {
    /// Gateway base URL, e.g. http://127.0.0.1:8900.
    #[arg(long)]
    url: String,
    /// The management token (also the chat turns' bearer token).
    #[arg(long, env = "FACIO_MANAGEMENT_TOKEN")]
    token: String,
    /// The gateway's pid, for its memory.
    #[arg(long)]
    pid: u32,
    /// Sessions to leave waiting.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Sessions opened at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Sessions opened and decided before the first memory reading (not counted).
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Waiting sessions whose review is decided, chosen at random.
    #[arg(long, default_value_t = 1000)]
    sample: usize,
    /// Decisions in flight at once (1: one after another).
    #[arg(long, default_value_t = 1)]
    decide_concurrency: usize,
    /// Seed of the sample's choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long to wait for every session to passivate, in seconds.
    #[arg(long, default_value_t = 900)]
    passivate_timeout_s: u64,
}

fn rss(pid: u32) -> anyhow::Result<u64> {
    rss_kib(pid)
        .map(|(rss, _)| rss)
        .ok_or_else(|| anyhow::anyhow!("cannot read the memory of pid {pid}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Gateway::client(args.concurrency.max(8), Duration::from_secs(120))?;
    let gateway = Gateway::new(&args.url, Some(args.token.clone()), client);

    // Warm-up: the first turns and decisions allocate what every later one reuses.
    let warm = open_all(&gateway, keys("warm", args.warmup), args.concurrency).await;
    anyhow::ensure!(warm.errors == 0, "warm-up: {:?}", warm.first_error);
    let warmed = decide_all(&gateway, &warm.waiting, args.decide_concurrency).await;
    if let Some(Err(e)) = warmed.iter().find(|r| r.is_err()) {
        anyhow::bail!("warm-up decision: {e}");
    }
    let rss_before = rss(args.pid)?;

    let opened = open_all(&gateway, keys("wait", args.sessions), args.concurrency).await;
    let rss_waiting = rss(args.pid)?;
    let active_waiting = gateway.active_sessions().await;
    let n = opened.waiting.len();
    println!("sessions waiting / errors        {n} / {}", opened.errors);
    if let Some(e) = &opened.first_error {
        println!("first error                      {e}");
    }
    println!(
        "opened in                        {:.1} s ({:.1} sessions/s)",
        opened.elapsed.as_secs_f64(),
        n as f64 / opened.elapsed.as_secs_f64().max(f64::EPSILON)
    );

    let passivated = poll(
        Duration::from_secs(args.passivate_timeout_s),
        Duration::from_millis(500),
        || async { gateway.active_sessions().await.filter(|a| *a == 0) },
    )
    .await
    .is_some();
    let rss_passivated = rss(args.pid)?;
    let pending = pending_reviews(&gateway, n + args.warmup + 1)
        .await
        .map_err(anyhow::Error::msg)?;
    let rss_listed = rss(args.pid)?;

    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let picked = rand::seq::index::sample(&mut rng, n, args.sample.min(n));
    let sample: Vec<Waiting> = picked.iter().map(|i| opened.waiting[i].clone()).collect();
    let started = std::time::Instant::now();
    let results = decide_all(&gateway, &sample, args.decide_concurrency).await;
    let decide_elapsed = started.elapsed();
    let rss_decided = rss(args.pid)?;
    let peak = rss_kib(args.pid).map(|(_, peak)| peak).unwrap_or(0);

    let (mut decided, mut resumed, mut finished) = (Vec::new(), Vec::new(), Vec::new());
    let (mut failed, mut not_completed, mut first_failure) = (0, 0, None);
    for result in &results {
        match result {
            Ok(r) => {
                decided.push(r.decided);
                resumed.push(r.resumed);
                finished.push(r.finished);
                not_completed += usize::from(!r.completed);
            }
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e.clone());
            }
        }
    }
    let (decided, resumed, finished) = (
        Samples::new(decided),
        Samples::new(resumed),
        Samples::new(finished),
    );
    let per_session =
        |after: u64| (after.saturating_sub(rss_before) * 1024) as f64 / n.max(1) as f64;
    println!(
        "active sessions when all waited  {}",
        active_waiting.map_or("?".to_owned(), |a| a.to_string())
    );
    println!("all passivated                   {passivated}");
    println!("pending reviews listed           {pending}");
    println!(
        "server RSS before / waiting / passivated / listed / decided  {rss_before} / {rss_waiting} / {rss_passivated} / {rss_listed} / {rss_decided} KiB (peak {peak})"
    );
    println!(
        "bytes per waiting session        {:.0} (waiting), {:.0} (passivated)",
        per_session(rss_waiting),
        per_session(rss_passivated)
    );
    println!(
        "decisions ok / failed / not completed  {} / {failed} / {not_completed} in {:.1} s at {}",
        finished.len(),
        decide_elapsed.as_secs_f64(),
        args.decide_concurrency
    );
    for (name, s) in [
        ("decide answered", &decided),
        ("run resumed", &resumed),
        ("run completed", &finished),
    ] {
        println!(
            "{name:<16} p50 / p90 / p99 / max  {:.2} / {:.2} / {:.2} / {:.2} ms",
            millis(s.percentile(50.0)),
            millis(s.percentile(90.0)),
            millis(s.percentile(99.0)),
            millis(s.max())
        );
    }
    if let Some(e) = &first_failure {
        println!("first failed decision            {e}");
    }
    let summary = serde_json::json!({
        "sessions": n, "openErrors": opened.errors, "openedPerSecond": n as f64 / opened.elapsed.as_secs_f64(),
        "activeWhenWaiting": active_waiting, "passivated": passivated, "pendingListed": pending,
        "rssKiB": {"before": rss_before, "waiting": rss_waiting, "passivated": rss_passivated,
                   "listed": rss_listed, "decided": rss_decided, "peak": peak},
        "bytesPerSession": {"waiting": per_session(rss_waiting), "passivated": per_session(rss_passivated)},
        "decisions": finished.len(), "failed": failed, "notCompleted": not_completed,
        "completedMs": {"p50": millis(finished.percentile(50.0)), "p90": millis(finished.percentile(90.0)),
                        "p99": millis(finished.percentile(99.0)), "max": millis(finished.max())},
        "resumedMs": {"p50": millis(resumed.percentile(50.0)), "p99": millis(resumed.percentile(99.0))},
        "decideMs": {"p50": millis(decided.percentile(50.0)), "p99": millis(decided.percentile(99.0))},
    });
    println!("{summary}");
    anyhow::ensure!(
        opened.errors == 0 && failed == 0,
        "some sessions or decisions failed"
    );
    Ok(())
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i}")).collect()
}
