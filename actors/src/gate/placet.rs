//! Delivering reviews to Placet and taking its answers back. The review row stays the
//! truth: Placet's answer goes through the same decision path as every surface, so
//! an answer given in the inbox first simply wins and Placet's is ignored.

use std::sync::Arc;
use std::time::Duration;

use facio_services::placet::{PlacetClient, WaitOutcome};
use facio_services::store::{
    AuditEventKind, AuditFilter, NewAuditEvent, ReviewRecord, ReviewStatus,
};

use super::{ReviewDecision, ReviewError, decide};
use crate::context::NodeContext;

/// Pause after a failed Placet call before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

fn client(deps: &NodeContext) -> Option<PlacetClient> {
    let (url, key, channel) = deps.config.channels.placet.delivery()?;
    match PlacetClient::new(url, key, channel) {
        Ok(client) => Some(client),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Placet client");
            None
        }
    }
}

/// Posts a new review to Placet (when configured) and follows it until it closes.
pub(crate) fn deliver(deps: Arc<NodeContext>, review: ReviewRecord) {
    let Some(client) = client(&deps) else { return };
    deps.clone().background.spawn(async move {
        let metadata = serde_json::json!({
            "facioReviewId": review.id, "runId": review.run_id, "sessionKey": review.session_key, "tool": review.tool,
        });
        let message_id = loop {
            match client.post_review(&review.request, metadata.clone()).await {
                Ok(id) => break id,
                Err(e) => {
                    tracing::warn!(review = %review.id, error = %e, "Placet did not take the review; retrying");
                    if !still_pending(&deps, &review).await {
                        return;
                    }
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        };
        let event = NewAuditEvent {
            kind: AuditEventKind::ReviewDelivered,
            session_key: Some(review.session_key.clone()),
            run_id: Some(review.run_id.clone()),
            actor: "runtime".to_owned(),
            data: serde_json::json!({"reviewId": review.id, "surface": "placet", "messageId": message_id, "channelId": client.channel()}),
        };
        if let Err(e) = deps.store.append_audit(&review.tenant, event).await {
            tracing::error!(review = %review.id, error = %e, "could not record the Placet delivery");
        }
        follow(deps, client, review, message_id).await;
    });
}

/// After a restart: keeps following a pending review already posted to Placet.
pub(crate) async fn resume(deps: Arc<NodeContext>, review: ReviewRecord) {
    let Some(client) = client(&deps) else { return };
    let filter = AuditFilter {
        run_id: Some(review.run_id.clone()),
        kind: Some(AuditEventKind::ReviewDelivered),
        ..AuditFilter::default()
    };
    let delivered = deps
        .store
        .list_audit(&review.tenant, &filter)
        .await
        .unwrap_or_default();
    let message_id = delivered.iter().find_map(|e| {
        (e.data["reviewId"] == review.id.as_str() && e.data["surface"] == "placet")
            .then(|| e.data["messageId"].as_str().map(str::to_owned))
            .flatten()
    });
    match message_id {
        Some(message_id) => {
            deps.clone()
                .background
                .spawn(follow(deps, client, review, message_id));
        }
        None => deliver(deps, review),
    }
}

async fn still_pending(deps: &NodeContext, review: &ReviewRecord) -> bool {
    matches!(
        deps.store.get_review(&review.tenant, &review.id).await,
        Ok(Some(r)) if r.status == ReviewStatus::Pending
    )
}

/// Long-polls Placet until a human answers there or the review closes elsewhere.
async fn follow(
    deps: Arc<NodeContext>,
    client: PlacetClient,
    review: ReviewRecord,
    message_id: String,
) {
    let timeout = Duration::from_millis(
        deps.config
            .channels
            .placet
            .wait_timeout_ms
            .clamp(100, 30_000),
    );
    while still_pending(&deps, &review).await {
        match client.wait(&message_id, timeout).await {
            Ok(WaitOutcome::Pending) => {}
            Ok(WaitOutcome::Expired) => return,
            Ok(WaitOutcome::Completed(response)) => {
                let decision = ReviewDecision {
                    response,
                    reviewer: Some("placet".to_owned()),
                    comment: None,
                    edited_arguments: None,
                };
                match decide(&deps, &review.tenant, &review.id, decision).await {
                    Ok(_) | Err(ReviewError::Closed(_)) => {}
                    Err(e) => {
                        tracing::warn!(review = %review.id, error = %e, "Placet's answer was not applied")
                    }
                }
                return;
            }
            Err(e) => {
                tracing::warn!(review = %review.id, error = %e, "waiting on Placet failed; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}
