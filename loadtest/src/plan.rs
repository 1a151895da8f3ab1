//! Running a plan: N sessions, each K sequential turns, at most C sessions at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use crate::stats::Samples;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// One gateway, or a cluster's nodes: turn `t` of session `s` goes to node
    /// `(s + t) mod n`, so with several nodes most turns arrive at a node that does
    /// not hold their session and are forwarded.
    pub urls: Vec<String>,
    pub sessions: usize,
    pub turns: usize,
    pub concurrency: usize,
}

/// What happened.
#[derive(Debug)]
pub struct LoadReport {
    pub latencies: Samples,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn turns_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs the plan and collects per-turn latencies of successful turns.
pub async fn run(plan: &LoadPlan) -> anyhow::Result<LoadReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .timeout(Duration::from_secs(120))
        .build()?;
    let endpoints: Arc<Vec<String>> = Arc::new(
        plan.urls
            .iter()
            .map(|url| format!("{}/v1/chat/completions", url.trim_end_matches('/')))
            .collect(),
    );
    anyhow::ensure!(!endpoints.is_empty(), "no gateway URL");
    let started = Instant::now();
    let results: Vec<Vec<Result<Duration, String>>> = futures::stream::iter(0..plan.sessions)
        .map(|session| {
            let (client, endpoints, turns) = (client.clone(), endpoints.clone(), plan.turns);
            async move {
                let mut out = Vec::with_capacity(turns);
                for turn in 0..turns {
                    let endpoint = &endpoints[(session + turn) % endpoints.len()];
                    out.push(one_turn(&client, endpoint, session, turn).await);
                }
                out
            }
        })
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for result in results.into_iter().flatten() {
        match result {
            Ok(latency) => latencies.push(latency),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    Ok(LoadReport {
        latencies: Samples::new(latencies),
        errors,
        first_error,
        elapsed,
    })
}

async fn one_turn(
    client: &reqwest::Client,
    endpoint: &str,
    session: usize,
    turn: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    let response = client
        .post(endpoint)
        .header("X-Session-Key", format!("load:{session}"))
        .json(&json!({"model": "scripted-1", "messages": [{"role": "user", "content": format!("turn {turn}")}]}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    Ok(started.elapsed())
}
