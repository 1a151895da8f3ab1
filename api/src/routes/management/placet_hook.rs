//! `POST /placet/webhook`: what Placet sends the agent (registered with `setWebhook`,
//! authenticated by the `Authorization` header registered with it, which this API
//! checks like any caller's). `message:created` from a user is a turn of the channel's
//! session whose answer is posted back to Placet; `review:responded` decides the
//! review that Placet message carried. A message id is taken once (a redelivery gets
//! the run it started); a review answered twice is decided once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use facio_actors::{Origin, ReviewDecision, ReviewError, TurnRequest};
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::review::ReviewId;
use facio_services::store::{AuditEventKind, AuditFilter, Change, NewAuditEvent, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Caller;
use crate::error::ApiError;
use crate::routes::AppState;

/// Placet message ids remembered per node.
const IDS_MAX: usize = 100_000;
/// Longest the node follows a turn from Placet for its answer.
const FOLLOW_FOR: Duration = Duration::from_secs(24 * 3600);
/// Longest a review answer waits for its delivery to be on record.
const DELIVERY_RECORDED_WITHIN: Duration = Duration::from_secs(5);

static SEEN: Mutex<Option<HashMap<String, RunId>>> = Mutex::new(None);

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/placet/webhook", post(webhook))
}

/// A call of Placet's webhook: its `event` and the fields of that event.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PlacetEvent {
    /// `message:created`, `review:responded`, `review:expired`, ...
    event: Option<String>,
    channel_id: Option<String>,
    /// `message:created`: the message (`id`, `senderType`, `senderId`, `text`, ...).
    #[schema(value_type = Option<Object>)]
    message: Option<Value>,
    /// `review:responded`: the Placet message that carried the review.
    #[serde(rename = "message_id")]
    message_id: Option<String>,
    /// `review:responded`: the reviewer's answer, in the review type's shape.
    #[schema(value_type = Option<Object>)]
    response: Option<Value>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    _rest: serde_json::Map<String, Value>,
}

/// What the webhook did with the call.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Accepted {
    accepted: bool,
    /// What it became: `turn`, `decision`, `duplicate` or `ignored`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    run_id: Option<RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    review_id: Option<ReviewId>,
}

fn reply(outcome: &'static str) -> Accepted {
    Accepted {
        accepted: outcome != "ignored",
        outcome,
        run_id: None,
        review_id: None,
    }
}

async fn webhook(
    caller: Caller,
    State(state): State<AppState>,
    onward: crate::cluster::Onward,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: PlacetEvent = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::invalid_request(None, format!("the webhook body: {e}")))?;
    for (field, value) in [("message", &body.message), ("response", &body.response)] {
        if value.as_ref().is_some_and(|v| !v.is_object()) {
            return Err(ApiError::invalid_request(
                Some(field),
                format!("{field} must be an object"),
            ));
        }
    }
    let answer = match body.event.as_deref() {
        Some("message:created") => match message(&caller, &state, &body, &onward, &raw).await? {
            Ok(answer) => answer,
            Err(forwarded) => return Ok(forwarded),
        },
        Some("review:responded") => responded(&caller, &state, &body).await?,
        other => {
            tracing::debug!(event = ?other, "Placet webhook event ignored");
            reply("ignored")
        }
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// `Ok(Err(response))`: the channel's session is another node's, whose answer this is.
async fn message(
    caller: &Caller,
    state: &AppState,
    body: &PlacetEvent,
    onward: &crate::cluster::Onward,
    raw: &axum::body::Bytes,
) -> Result<Result<Accepted, Response>, ApiError> {
    let message = body.message.clone().unwrap_or(Value::Null);
    let (Some(id), Some(text)) = (message["id"].as_str(), message["text"].as_str()) else {
        return Err(ApiError::invalid_request(
            Some("message"),
            "message:created needs message.id and message.text",
        ));
    };
    // The agent's own messages come back too; only a person's are turns.
    if message["senderType"].as_str().is_some_and(|s| s != "user") || text.trim().is_empty() {
        return Ok(Ok(reply("ignored")));
    }
    let seen = SEEN
        .lock()
        .ok()
        .and_then(|s| s.as_ref().and_then(|m| m.get(id).cloned()));
    if let Some(run_id) = seen {
        return Ok(Ok(Accepted {
            run_id: Some(run_id),
            ..reply("duplicate")
        }));
    }
    let tenant = caller.tenant().clone();
    let channel = body
        .channel_id
        .clone()
        .or_else(|| message["channelId"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "placet".to_owned());
    let plain = crate::routes::hooks::plain(&channel);
    let session = SessionKey::new(format!("placet-{plain}"))
        .map_err(|e| ApiError::invalid_request(Some("channelId"), e.to_string()))?;
    // The session's owner runs its turns.
    if let Some(answer) = state.on_owner(&tenant, &session, onward, raw).await? {
        return Ok(Err(answer));
    }
    let (run_id, _events) = state
        .runtime
        .submit(TurnRequest {
            tenant: tenant.clone(),
            session_key: session.clone(),
            input: text.to_owned(),
            origin: Origin::Channel,
            hooks: None,
            model: None,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    if let Ok(mut seen) = SEEN.lock() {
        let map = seen.get_or_insert_with(HashMap::new);
        if map.len() >= IDS_MAX {
            map.clear();
        }
        map.insert(id.to_owned(), run_id.clone());
    }
    let event = NewAuditEvent {
        kind: AuditEventKind::ChannelMessage,
        session_key: None,
        run_id: None,
        actor: "channel".to_owned(),
        data: json!({"channel": "placet", "from": message["senderId"], "id": id,
                     "accepted": true, "runId": run_id, "sessionKey": session}),
    };
    state
        .runtime
        .store()
        .apply_change(&tenant, Change::Record, vec![(tenant.clone(), event)])
        .await
        .map_err(super::store_error)?;
    let (runtime, run) = (state.runtime.clone(), run_id.clone());
    tokio::spawn(async move { answer_back(runtime, tenant, run).await });
    Ok(Ok(Accepted {
        run_id: Some(run_id),
        ..reply("turn")
    }))
}

/// Posts the run's answer to Placet once the run ends.
async fn answer_back(
    runtime: std::sync::Arc<facio_actors::Runtime>,
    tenant: TenantId,
    run_id: RunId,
) {
    let placet = &runtime.config().channels.placet;
    let Some((url, key, channel)) = placet.delivery() else {
        return;
    };
    let Ok(client) = facio_services::placet::PlacetClient::new(url, key, channel) else {
        return;
    };
    let Some(run) = runtime.until_ended(&tenant, &run_id, FOLLOW_FOR).await else {
        return;
    };
    let (text, status) = match (run.status, run.content) {
        (RunStatus::Completed, Some(text)) if !text.trim().is_empty() => (text, "info"),
        (status, _) => (
            format!("The turn ended {}.", status.as_str().replace('_', " ")),
            "error",
        ),
    };
    if let Err(e) = client.post_text(&text, status).await {
        tracing::warn!(error = %e, "could not post the answer to Placet");
    }
}

/// The review whose delivery to Placet became message `message_id`.
async fn delivered_review(
    state: &AppState,
    tenant: &TenantId,
    message_id: &str,
) -> Result<Option<ReviewId>, ApiError> {
    let delivered = state
        .runtime
        .store()
        .list_audit(
            tenant,
            &AuditFilter {
                kind: Some(AuditEventKind::ReviewDelivered),
                text: Some(message_id.to_owned()),
                limit: Some(50),
                ..AuditFilter::default()
            },
        )
        .await
        .map_err(super::store_error)?;
    Ok(delivered.iter().find_map(|e| {
        (e.data["messageId"].as_str() == Some(message_id))
            .then(|| {
                e.data["reviewId"]
                    .as_str()
                    .and_then(|r| r.parse::<ReviewId>().ok())
            })
            .flatten()
    }))
}

async fn responded(
    caller: &Caller,
    state: &AppState,
    body: &PlacetEvent,
) -> Result<Accepted, ApiError> {
    let Some(message_id) = body.message_id.as_deref() else {
        return Err(ApiError::invalid_request(
            Some("message_id"),
            "review:responded needs message_id",
        ));
    };
    let Some(response) = body.response.clone() else {
        return Err(ApiError::invalid_request(
            Some("response"),
            "review:responded needs response",
        ));
    };
    let tenant = caller.tenant();
    // The review a Placet message carried is named by its delivery event, which is
    // written just after Placet accepted the message: an answer as fast as that may
    // arrive first, so it is looked for again for a while.
    let deadline = tokio::time::Instant::now() + DELIVERY_RECORDED_WITHIN;
    let review_id = loop {
        if let Some(found) = delivered_review(state, tenant, message_id).await? {
            break found;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(reply("ignored"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let decided = state
        .runtime
        .decide_review(
            tenant,
            &review_id,
            ReviewDecision {
                response,
                reviewer: Some("placet".to_owned()),
                comment: None,
                edited_arguments: None,
            },
        )
        .await;
    match decided {
        Ok(_) => Ok(Accepted {
            review_id: Some(review_id),
            ..reply("decision")
        }),
        // Placet's long-poll (or a redelivery) got there first.
        Err(ReviewError::Closed(_)) => Ok(Accepted {
            review_id: Some(review_id),
            ..reply("duplicate")
        }),
        Err(ReviewError::Invalid(e)) => Err(ApiError::unprocessable(
            Some(&format!("response.{}", e.field())),
            e.to_string(),
        )),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}
