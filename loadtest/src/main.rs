//! `facio-loadtest`: drives a running `facio serve` and prints what it measured.

use std::time::Duration;

use clap::Parser;
use facio_loadtest::memory::{cpu_ms, rss_kib};
use facio_loadtest::plan::{LoadPlan, run};
use facio_loadtest::stats::millis;
use facio_loadtest::store::{per_turn, total_counts};

#[derive(Parser)]
#[command(about = "N sessions × K turns at concurrency C against a facio gateway")]
struct Args {
    /// Gateway base URL, e.g. http://127.0.0.1:8900; a cluster's nodes comma-separated
    /// (each session's turns go round them).
    #[arg(long, value_delimiter = ',', required = true)]
    url: Vec<String>,
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    #[arg(long, default_value_t = 3)]
    turns: usize,
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// The scripted model's fixed latency, subtracted to get the runtime's overhead.
    #[arg(long, default_value_t = 0)]
    model_latency_ms: u64,
    /// The gateway's pid (a cluster's, comma-separated), to report memory and CPU
    /// (added up over the processes).
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run_load().await
}

/// Resident and peak memory of the processes, added up; `None` without pids or when
/// one cannot be read.
fn memory_of(pids: &[u32]) -> Option<(u64, u64)> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|&pid| rss_kib(pid))
        .try_fold((0, 0), |(rss, peak), one| {
            one.map(|(r, p)| (rss + r, peak + p))
        })
}

/// CPU time of the processes so far, in milliseconds, added up.
fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_ms(pid)).sum()
}

async fn run_load() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = LoadPlan {
        urls: args.url.clone(),
        sessions: args.sessions,
        turns: args.turns,
        concurrency: args.concurrency,
    };
    let rss_before = memory_of(&args.pid).map(|(rss, _)| rss);
    let cpu_before = cpu_of(&args.pid);
    let store_before = total_counts(&plan.urls).await;
    let report = run(&plan).await?;
    let store_after = total_counts(&plan.urls).await;
    let memory = memory_of(&args.pid);
    let cpu_per_turn = cpu_before
        .zip(cpu_of(&args.pid))
        .filter(|_| !report.latencies.is_empty())
        .map(|(before, after)| (after - before) / report.latencies.len() as f64);
    let model = Duration::from_millis(args.model_latency_ms);
    let overhead = report.latencies.minus(model);
    let l = &report.latencies;
    println!(
        "sessions × turns @ concurrency  {} × {} @ {}",
        plan.sessions, plan.turns, plan.concurrency
    );
    println!(
        "model latency                   {} ms",
        args.model_latency_ms
    );
    println!(
        "turns ok / errors               {} / {}",
        l.len(),
        report.errors
    );
    println!(
        "elapsed                         {:.2} s",
        report.elapsed.as_secs_f64()
    );
    println!(
        "throughput                      {:.1} turns/s",
        report.turns_per_second()
    );
    println!(
        "latency p50 / p90 / p99 / max   {:.2} / {:.2} / {:.2} / {:.2} ms",
        millis(l.percentile(50.0)),
        millis(l.percentile(90.0)),
        millis(l.percentile(99.0)),
        millis(l.max())
    );
    println!(
        "runtime overhead p50 / p99      {:.2} / {:.2} ms",
        millis(overhead.percentile(50.0)),
        millis(overhead.percentile(99.0))
    );
    if let Some((rss, peak)) = memory {
        println!(
            "server RSS before / after / peak {} / {rss} / {peak} KiB",
            rss_before.unwrap_or(0)
        );
    }
    let store = store_before
        .zip(store_after)
        .and_then(|(before, after)| per_turn(before, after, l.len()));
    if let Some(per) = store {
        println!("store commits per turn          {:.2}", per.commits);
        println!("store writes per turn           {:.2}", per.writes);
        println!("store reads per turn            {:.2}", per.reads);
    }
    if let Some(cpu) = cpu_per_turn {
        println!("server CPU per turn             {cpu:.3} ms");
    }
    if let Some(error) = &report.first_error {
        println!("first error                     {error}");
    }
    let summary = serde_json::json!({
        "sessions": plan.sessions, "turns": plan.turns, "concurrency": plan.concurrency,
        "modelLatencyMs": args.model_latency_ms, "ok": l.len(), "errors": report.errors,
        "turnsPerSecond": report.turns_per_second(),
        "p50Ms": millis(l.percentile(50.0)), "p99Ms": millis(l.percentile(99.0)),
        "overheadP50Ms": millis(overhead.percentile(50.0)), "overheadP99Ms": millis(overhead.percentile(99.0)),
        "peakRssKiB": memory.map(|(_, peak)| peak),
        "storeCommitsPerTurn": store.map(|p| p.commits),
        "storeWritesPerTurn": store.map(|p| p.writes),
        "storeReadsPerTurn": store.map(|p| p.reads),
        "serverCpuMsPerTurn": cpu_per_turn,
    });
    println!("{summary}");
    if report.errors > 0 {
        anyhow::bail!("{} turns failed", report.errors);
    }
    Ok(())
}
