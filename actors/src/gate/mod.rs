//! Approval gates. The review row is the gate's state (written before anything is
//! delivered); the node only keeps its timer: one entry per pending review in the
//! node's timers (`review_timers`), all served by one background task, so a review
//! waiting costs an entry of a few hundred bytes, not an actor. Closing a review is a
//! conditional update in the store, so a decision and a timeout racing each other
//! close it exactly once, and the loser does nothing.

mod close;
mod decide;
mod open;
mod placet;

use std::sync::Arc;

use chrono::Utc;
use facio_services::domain::TenantId;
use facio_services::review::{ReviewId, ReviewOutcome};
use facio_services::store::{ReviewRecord, StoreError};

pub(crate) use close::{CloseError, close_review, review_outcome};
pub(crate) use decide::decide;
pub use decide::{ReviewDecision, ReviewError};
pub(crate) use open::{GateRequest, in_doubt_request, open_gate};
pub(crate) use placet::resume as resume_placet;

use crate::context::NodeContext;

/// Watches the timer of a pending review (also for reviews found pending at start).
pub(crate) async fn arm(deps: Arc<NodeContext>, review: &ReviewRecord) {
    deps.gates
        .arm(review.tenant.clone(), review.id.clone(), review.expires_at);
}

/// Whether this node watches the timer of `review` now.
fn armed(deps: &NodeContext, review: &ReviewId) -> bool {
    deps.gates.armed(review)
}

/// Stops watching the timer of a review that closed.
pub(crate) fn disarm(deps: &NodeContext, review: &ReviewId) {
    deps.gates.disarm(review);
}

/// The node's review timers, for as long as it runs. Should the loop ever panic, it
/// starts again: the deadlines are kept in [`Timers`], not in the loop.
pub(crate) async fn keep_timers(deps: Arc<NodeContext>) {
    use futures::FutureExt;
    loop {
        let run = std::panic::AssertUnwindSafe(serve_timers(deps.clone())).catch_unwind();
        if run.await.is_err() {
            tracing::error!("the review timers stopped on a panic; starting them again");
        }
    }
}

/// Sleeps until the earliest deadline (or a new one), then times out every review
/// whose time is up.
async fn serve_timers(deps: Arc<NodeContext>) {
    loop {
        for (tenant, review) in deps.gates.due(Utc::now()) {
            expire(deps.clone(), tenant, review);
        }
        let changed = deps.gates.changed.notified();
        match deps.gates.next() {
            Some(at) => {
                let wait = (at - Utc::now()).to_std().unwrap_or_default();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// Times `review` out, in a task of its own (the timer task never waits on the store).
fn expire(deps: Arc<NodeContext>, tenant: TenantId, review: ReviewId) {
    let background = deps.clone();
    background.background.spawn(async move {
        match close_review(&deps, &tenant, &review, ReviewOutcome::TimedOut, None).await {
            Ok(_) | Err(CloseError::Closed(_)) => {}
            // This node's clock ran ahead of the database's: look again shortly.
            Err(CloseError::Store(StoreError::NotExpired(_))) => {
                if let Ok(Some(record)) = deps.store.get_review(&tenant, &review).await {
                    let later = record.expires_at.max(Utc::now()) + chrono::Duration::seconds(1);
                    deps.gates.arm(tenant, review, later);
                }
            }
            Err(e) => {
                tracing::error!(review = %review, error = %e, "could not expire the review")
            }
        }
    });
}

/// Takes this node's share of the pending reviews: their timers, and following them
/// on Placet. On a single node that is every review; in a cluster, each review is
/// watched by the node rendezvous hashing prefers for its session (and by the node
/// that opened it, until that node goes). Called at start and whenever the live
/// nodes change; a review watched twice for a moment closes once all the same.
pub(crate) async fn adopt(deps: &Arc<NodeContext>) {
    let pending = match deps.store.all_pending_reviews().await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the pending reviews to watch; the next change of nodes tries again");
            return;
        }
    };
    let mut adopted = 0usize;
    for review in pending {
        let mine = deps
            .peers
            .get()
            .is_none_or(|p| p.preferred(&review.tenant, &review.session_key) == deps.node);
        if !mine || armed(deps, &review.id) {
            continue;
        }
        arm(deps.clone(), &review).await;
        resume_placet(deps.clone(), review).await;
        adopted += 1;
    }
    if adopted > 0 {
        tracing::info!(reviews = adopted, "watching pending reviews");
    }
}
