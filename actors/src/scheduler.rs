//! The scheduler: every second, each tenant's scheduled jobs that are due fire as
//! queued turns of their sessions. A fire is written to the store first, as a
//! queued run whose id is the job's and the instant's (`cron::fire_run_id`), so
//! however many nodes fire the same instant, the store takes it once; then the
//! node holding the session is told (here, or through its inbox), and a sweep finds
//! a fire whose notice was lost. In a cluster only the node rendezvous hashing
//! prefers for a job's session fires it; another takes over when that node leaves.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use facio_services::cron::{CronJob, fire_run_id};
use facio_services::domain::{CronJobId, RunId, TenantId};

use crate::context::NodeContext;
use crate::node::NodeRefs;
use crate::turn::Origin;

/// How often due jobs are looked for.
const TICK: Duration = Duration::from_secs(1);
/// How often the jobs are read again from the store (a change made on this node is
/// seen at the next tick; one made on another node within this).
const RELOAD: Duration = Duration::from_secs(5);

/// The origin of a job's turns.
pub(crate) fn origin_of(job: &CronJob) -> Origin {
    if job.require_approval {
        Origin::CronReviewed
    } else {
        Origin::Cron
    }
}

/// Gives `job`'s session the turn `run` (the fire at `at`, or one asked for by hand
/// when `at` is none), written by `actor`. `false` when that run exists already: the
/// instant was fired before, by this node or another.
pub(crate) async fn fire(
    deps: &NodeContext,
    tenant: &TenantId,
    job: &CronJob,
    run: &RunId,
    at: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<bool, String> {
    let mut extra = serde_json::Map::new();
    extra.insert("cronJob".into(), serde_json::json!(job.id));
    extra.insert("cronJobName".into(), serde_json::json!(job.name));
    match at {
        Some(at) => extra.insert("scheduledFor".into(), serde_json::json!(at)),
        None => extra.insert("runNow".into(), serde_json::json!(true)),
    };
    let step =
        crate::turn::queued_step(deps, tenant, &job.message, origin_of(job), None, extra).await?;
    deps.store
        .enqueue_turn(tenant, &job.session_key, run, actor, step)
        .await
        .map_err(|e| e.to_string())
}

/// Fires due jobs until the node shuts down.
pub(crate) async fn keep_schedule(deps: Arc<NodeContext>, refs: Arc<NodeRefs>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut jobs: Vec<(TenantId, CronJob)> = Vec::new();
    let mut loaded: Option<(tokio::time::Instant, u64)> = None;
    // The instant of each job this node saw taken (fired here or found fired).
    let mut taken: HashMap<(TenantId, CronJobId), DateTime<Utc>> = HashMap::new();
    loop {
        every.tick().await;
        if deps.draining.load(std::sync::atomic::Ordering::Acquire) {
            continue;
        }
        let generation = deps.cron.generation();
        let stale = loaded.is_none_or(|(at, seen)| at.elapsed() >= RELOAD || seen != generation);
        if stale {
            match deps.cron.all().await {
                Ok(all) => {
                    jobs = all;
                    loaded = Some((tokio::time::Instant::now(), generation));
                    let live: HashSet<(&TenantId, &CronJobId)> =
                        jobs.iter().map(|(t, j)| (t, &j.id)).collect();
                    taken.retain(|(tenant, id), _| live.contains(&(tenant, id)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the scheduled jobs; trying again");
                }
            }
        }
        let now = Utc::now();
        for (tenant, job) in &jobs {
            let Some(at) = job.due(now) else { continue };
            let slot = (tenant.clone(), job.id.clone());
            if taken.get(&slot) == Some(&at) {
                continue;
            }
            if let Some(peers) = deps.peers.get()
                && peers.preferred(tenant, &job.session_key) != deps.node
            {
                continue;
            }
            // The job as it is now: paused, changed or removed on another node since
            // it was read, it does not fire, and the jobs are read again.
            match deps.cron.get(tenant, &job.id).await {
                Ok(current) if current == *job => {}
                Ok(_) | Err(facio_services::cron::CronError::NotFound(_)) => {
                    loaded = None;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "cannot read a scheduled job; trying again");
                    continue;
                }
            }
            let run = fire_run_id(tenant, &job.id, at);
            match fire(
                &deps,
                tenant,
                job,
                &run,
                Some(at),
                &format!("cron:{}", job.id),
            )
            .await
            {
                Ok(fired) => {
                    taken.insert(slot, at);
                    if fired {
                        tracing::info!(job = %job.id, run = %run, session = %job.session_key, at = %at, "a scheduled job fired");
                        crate::node::pass_notice(&deps, &refs, tenant, &job.session_key).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "a scheduled job could not fire; trying again");
                }
            }
        }
    }
}
