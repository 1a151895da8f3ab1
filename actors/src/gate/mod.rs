//! Approval gates: one `ApprovalGate` actor per pending review. The review row is
//! the gate's state (written before anything is delivered); the actor only holds the
//! timer. Closing a review is a conditional update in the store, so a decision and a
//! timeout racing each other close it exactly once, and the loser does nothing.

mod close;
mod decide;
mod open;
mod placet;

use std::sync::Arc;
use tracing::Instrument;

use chrono::Utc;
use facio_services::domain::TenantId;
use facio_services::review::{ReviewId, ReviewOutcome};
use facio_services::store::{ReviewRecord, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef};

pub(crate) use close::{CloseError, close_review, review_outcome};
pub(crate) use decide::decide;
pub use decide::{ReviewDecision, ReviewError};
pub(crate) use open::{GateRequest, in_doubt_request, open_gate};
pub(crate) use placet::resume as resume_placet;

use crate::context::NodeContext;

pub(crate) struct ApprovalGate;

pub(crate) struct GateArgs {
    pub deps: Arc<NodeContext>,
    pub tenant: TenantId,
    pub review_id: ReviewId,
    pub expires_at: chrono::DateTime<Utc>,
}

pub(crate) enum GateMsg {
    /// The review's time is up.
    Expire,
}

fn gate_name(review: &ReviewId) -> String {
    format!("gate:{review}")
}

/// Starts the gate actor of a pending review (also for reviews found pending at
/// start), under the node supervisor.
pub(crate) async fn arm(deps: Arc<NodeContext>, review: &ReviewRecord) {
    let supervisor = deps.refs.supervisor();
    let args = GateArgs {
        deps,
        tenant: review.tenant.clone(),
        review_id: review.id.clone(),
        expires_at: review.expires_at,
    };
    let name = Some(gate_name(&review.id));
    // Outside the current span: the gate lives until a human decides, and the turn's
    // spans must close (and be exported) when the turn ends.
    let detached = tracing::Span::none();
    let started = match supervisor {
        Some(supervisor) => Actor::spawn_linked(name, ApprovalGate, args, supervisor)
            .instrument(detached)
            .await
            .map(|_| ()),
        None => Actor::spawn(name, ApprovalGate, args)
            .instrument(detached)
            .await
            .map(|_| ()),
    };
    if let Err(e) = started {
        tracing::error!(review = %review.id, error = %e, "could not arm the review's timeout");
    }
}

/// Whether this node runs the gate of `review` now.
fn armed(review: &ReviewId) -> bool {
    ractor::registry::where_is(gate_name(review)).is_some()
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
        if !mine || armed(&review.id) {
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

/// Stops the gate actor of a review that closed (its timer is no longer needed).
pub(crate) fn disarm(review: &ReviewId) {
    if let Some(cell) = ractor::registry::where_is(gate_name(review)) {
        cell.stop(None);
    }
}

impl Actor for ApprovalGate {
    type Msg = GateMsg;
    type State = GateArgs;
    type Arguments = GateArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<GateMsg>,
        args: GateArgs,
    ) -> Result<GateArgs, ActorProcessingErr> {
        let left = (args.expires_at - Utc::now()).to_std().unwrap_or_default();
        myself.send_after(left, || GateMsg::Expire);
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<GateMsg>,
        message: GateMsg,
        state: &mut GateArgs,
    ) -> Result<(), ActorProcessingErr> {
        let GateMsg::Expire = message;
        // The close happens in a task so this actor's mailbox is never held by the store.
        let (deps, tenant, review) = (
            state.deps.clone(),
            state.tenant.clone(),
            state.review_id.clone(),
        );
        state.deps.background.spawn(async move {
            match close_review(&deps, &tenant, &review, ReviewOutcome::TimedOut, None).await {
                Ok(_) | Err(CloseError::Closed(_)) => {}
                // This node's clock ran ahead of the database's: look again shortly.
                Err(CloseError::Store(StoreError::NotExpired(_))) => {
                    if let Ok(Some(record)) = deps.store.get_review(&tenant, &review).await {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        arm(deps.clone(), &record).await;
                    }
                }
                Err(e) => {
                    tracing::error!(review = %review, error = %e, "could not expire the review")
                }
            }
        });
        myself.stop(None);
        Ok(())
    }
}
