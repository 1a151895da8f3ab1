//! Closing a review (decision, timeout or cancellation) and resuming its run.

use std::sync::Arc;

use facio_services::domain::TenantId;
use facio_services::review::{ReviewId, ReviewOutcome};
use facio_services::store::{AuditEventKind, GateClosedStep, ReviewRecord, StepEvent, StoreError};

use super::disarm;
use crate::context::NodeContext;
use crate::context::Notice;

/// Why a review could not be closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("review {0} does not exist")]
    NotFound(ReviewId),
    #[error("review {} is already {}", .0.id, .0.status.as_str())]
    Closed(Box<ReviewRecord>),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Closes a pending review exactly once, records it, and resumes the waiting run.
pub(crate) async fn close_review(
    deps: &Arc<NodeContext>,
    tenant: &TenantId,
    id: &ReviewId,
    outcome: ReviewOutcome,
    actor: Option<&str>,
) -> Result<ReviewRecord, CloseError> {
    let event_outcome = outcome.clone();
    let id_for_event = id.clone();
    let step = GateClosedStep {
        review_id: id.clone(),
        outcome,
        actor: actor.unwrap_or("runtime").to_owned(),
        event: Box::new(move |closed: &ReviewRecord| {
            closed_event(&id_for_event, closed, &event_outcome)
        }),
    };
    // One step: the review's status and outcome with its event.
    let closed = match deps.store.record_gate_closed(tenant, step).await {
        Ok(record) => record,
        Err(StoreError::Conflict(_)) => {
            let current = deps
                .store
                .get_review(tenant, id)
                .await?
                .ok_or_else(|| CloseError::NotFound(id.clone()))?;
            return Err(CloseError::Closed(Box::new(current)));
        }
        Err(StoreError::NotFound(_)) => return Err(CloseError::NotFound(id.clone())),
        Err(e) => return Err(e.into()),
    };
    disarm(deps, id);
    observe_closed(&closed);
    let _ = deps.notices.send(Notice::ReviewClosed {
        tenant: tenant.clone(),
        review_id: id.clone(),
    });
    // The run resumes where its session is held: here, or on the node holding its
    // lease (told through its inbox, else directly; if both fail, its sweep finds
    // the decided review in the store).
    if let Some((owner, peers)) =
        crate::context::holder_elsewhere(deps, tenant, &closed.session_key).await
    {
        let key = &closed.session_key;
        if let Err(e) = peers.notify(&owner, tenant, key).await {
            tracing::warn!(run = %closed.run_id, owner = %owner, error = %e,
                "cannot reach the session node's inbox; telling it directly");
            if let Err(e) = peers
                .ask(&owner, tenant, key, crate::peers::SessionOp::Poke)
                .await
            {
                tracing::warn!(run = %closed.run_id, owner = %owner, error = %e,
                    "cannot tell the session's node that its review closed; its sweep will find it");
            }
        }
    } else {
        let origin =
            crate::origin::Origin::parse(&closed.origin).unwrap_or(crate::origin::Origin::Api);
        if let Err(e) = deps.refs.resume(
            tenant.clone(),
            closed.session_key.clone(),
            closed.run_id.clone(),
            origin,
        ) {
            tracing::error!(run = %closed.run_id, error = %e, "could not resume the run after its review closed");
        }
    }
    Ok(closed)
}

/// A closed review in the review metrics.
fn observe_closed(closed: &ReviewRecord) {
    use facio_services::telemetry::{metrics, names};
    let outcome = review_outcome(closed);
    let attributes = [
        metrics::tenant(&closed.tenant),
        opentelemetry::KeyValue::new(names::REVIEW_TYPE, closed.request.review_type().as_str()),
        opentelemetry::KeyValue::new(names::REVIEW_OUTCOME, outcome),
    ];
    let m = metrics();
    m.reviews_closed.add(1, &attributes);
    if let Some(at) = closed.decided_at {
        let waited = (at - closed.created_at).to_std().unwrap_or_default();
        m.review_latency.record(waited.as_secs_f64(), &attributes);
    }
}

/// How a closed review ended: `approved`, `rejected`, `answered`, `expired`,
/// `cancelled`.
pub(crate) fn review_outcome(review: &ReviewRecord) -> &'static str {
    match &review.outcome {
        Some(ReviewOutcome::Decided { response, .. }) => match response
            .get("selectedOption")
            .and_then(serde_json::Value::as_str)
        {
            Some("approve") => "approved",
            Some("reject") => "rejected",
            _ => "answered",
        },
        Some(ReviewOutcome::TimedOut) => "expired",
        Some(ReviewOutcome::Cancelled) => "cancelled",
        None => "pending",
    }
}

/// The audit event of a review as it closed.
fn closed_event(id: &ReviewId, closed: &ReviewRecord, outcome: &ReviewOutcome) -> StepEvent {
    let latency_ms = closed
        .decided_at
        .map(|at| (at - closed.created_at).num_milliseconds())
        .unwrap_or_default();
    let (kind, data) = match outcome {
        ReviewOutcome::Decided {
            response,
            reviewer,
            comment,
        } => (
            AuditEventKind::ReviewDecided,
            serde_json::json!({"reviewId": id, "callId": closed.call_id, "tool": closed.tool,
                "arguments": closed.context.get("arguments"), "reviewer": reviewer,
                "response": response, "comment": comment, "latencyMs": latency_ms}),
        ),
        ReviewOutcome::TimedOut => (
            AuditEventKind::ReviewExpired,
            serde_json::json!({"reviewId": id, "action": "deny", "latencyMs": latency_ms}),
        ),
        ReviewOutcome::Cancelled => (
            AuditEventKind::ReviewCancelled,
            serde_json::json!({"reviewId": id}),
        ),
    };
    StepEvent::new(kind, data)
}
