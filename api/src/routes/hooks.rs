//! `POST /hooks/{channel}`: messages in through a webhook channel
//! (`channels.webhooks.<name>`). A message is a turn only when it is signed with the
//! channel's secret, fresh, never seen before and from a sender on `allowFrom`; a
//! refused one stores nothing but the refusal's audit event. The turn's answer goes
//! back to the channel's `outboundUrl`, signed the same way, retried with backoff, and
//! recorded as delivered or as a dead letter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use facio_actors::{Origin, Runtime, TurnRequest};
use facio_services::channels::{
    Delivery, ReplayGuard, SIGNATURE_HEADER, TIMESTAMP_HEADER, deliver, verify,
};
use facio_services::config::WebhookChannel;
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::store::{AuditEventKind, Change, NewAuditEvent};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;

/// Message ids remembered per node, so a sender's retry of one message is one turn.
const IDS_MAX: usize = 100_000;
/// Longest the node follows a turn for its answer (a turn waiting for a human may
/// take this long before its answer goes out).
const FOLLOW_FOR: Duration = Duration::from_secs(24 * 3600);

/// What the webhook channels of this node share.
#[derive(Default)]
pub(crate) struct Hooks {
    seen: ReplayGuard,
    /// `(channel, message id)` → the run it started.
    ids: Mutex<HashMap<(String, String), (RunId, SessionKey)>>,
    http: reqwest::Client,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/hooks/{channel}", post(inbound))
        .route("/hooks/{tenant}/{channel}", post(inbound_tenant))
}

/// An inbound message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inbound {
    /// The sender's id for the message (a retry carries the same one).
    id: String,
    /// Who sent it, as `allowFrom` names senders.
    from: String,
    text: String,
    /// A conversation of the sender's (default: one per sender).
    #[serde(default)]
    thread: Option<String>,
}

fn tenant_of(channel: &WebhookChannel) -> Result<TenantId, ApiError> {
    match &channel.tenant {
        Some(name) => TenantId::new(name.clone()).map_err(|e| ApiError::internal(e.to_string())),
        None => Ok(TenantId::default_tenant()),
    }
}

/// Letters, digits, `-` and `_` of `text`, the rest as `_`, at most 64.
pub(crate) fn plain(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

async fn record(runtime: &Runtime, tenant: &TenantId, kind: AuditEventKind, data: Value) {
    let event = NewAuditEvent {
        kind,
        session_key: None,
        run_id: None,
        actor: "channel".to_owned(),
        data,
    };
    if let Err(e) = runtime
        .store()
        .apply_change(tenant, Change::Record, vec![(tenant.clone(), event)])
        .await
    {
        tracing::error!(error = %e, "could not record a channel event");
    }
}

/// A channel of the node's config.
async fn inbound(
    State(state): State<AppState>,
    Path(name): Path<String>,
    onward: crate::cluster::Onward,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(channel) = state.config.channels.webhooks.get(&name).cloned() else {
        return Err(ApiError::not_found(format!(
            "there is no channel named {name}"
        )));
    };
    let tenant = tenant_of(&channel)?;
    take(state, name, channel, tenant, onward, body).await
}

/// A channel a tenant added through `/api/v1/channels` (its secret resolved from the
/// tenant's credentials).
async fn inbound_tenant(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    onward: crate::cluster::Onward,
    body: Bytes,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found(format!("there is no channel named {name}"));
    let tenant = TenantId::new(tenant).map_err(|_| missing())?;
    let channels = facio_services::channels::tenant_channels(
        &state.config.channels.webhooks,
        state.runtime.store().as_ref(),
        &tenant,
    )
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let Some((_, channel, _)) = channels.into_iter().find(|(n, _, source)| {
        *n == name && *source == facio_services::channels::ChannelSource::Tenant
    }) else {
        return Err(missing());
    };
    let secrets = state.secrets(&tenant).await?;
    let channel =
        facio_services::channels::resolved(&channel, &secrets).map_err(ApiError::unavailable)?;
    take(state, name, channel, tenant, onward, body).await
}

/// Checks a signed message and makes it a turn of `tenant`.
async fn take(
    state: AppState,
    name: String,
    channel: WebhookChannel,
    tenant: TenantId,
    onward: crate::cluster::Onward,
    body: Bytes,
) -> Result<Response, ApiError> {
    let channel = &channel;
    let headers = &onward.headers;
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    verify(
        &channel.secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        chrono::Utc::now().timestamp(),
        channel.replay_window_s,
        &state.hooks.seen,
    )
    .map_err(|refusal| ApiError::unauthorized(refusal.to_string()))?;
    let message: Inbound = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_request(None, format!("the message: {e}")))?;
    if message.id.trim().is_empty() || message.from.trim().is_empty() {
        return Err(ApiError::invalid_request(
            None,
            "id and from must not be empty",
        ));
    }
    if message.text.trim().is_empty() {
        return Err(ApiError::invalid_request(
            Some("text"),
            "text must not be empty",
        ));
    }
    if !channel.allow_from.iter().any(|f| f == &message.from) {
        record(
            &state.runtime,
            &tenant,
            AuditEventKind::ChannelMessage,
            json!({"channel": name, "from": message.from, "id": message.id, "accepted": false,
                   "reason": "the sender is not on allowFrom"}),
        )
        .await;
        return Err(ApiError::forbidden(format!(
            "{} may not send to the channel {name} (allowFrom)",
            message.from
        )));
    }
    let key = (name.clone(), message.id.clone());
    if let Some((run_id, session)) = state
        .hooks
        .ids
        .lock()
        .ok()
        .and_then(|ids| ids.get(&key).cloned())
    {
        return Ok((
            StatusCode::OK,
            Json(json!({"runId": run_id, "sessionKey": session, "duplicate": true})),
        )
            .into_response());
    }
    let thread = message.thread.as_deref().unwrap_or(&message.from);
    let session = SessionKey::new(format!("webhook-{}-{}", plain(&name), plain(thread)))
        .map_err(|e| ApiError::invalid_request(Some("thread"), e.to_string()))?;
    // The session's owner runs its turns: a message that reached another node goes
    // there (checked again there; this node took nothing of it).
    if let Some(answer) = state.on_owner(&tenant, &session, &onward, &body).await? {
        return Ok(answer);
    }
    let (run_id, _events) = state
        .runtime
        .submit(TurnRequest {
            tenant: tenant.clone(),
            session_key: session.clone(),
            input: message.text.clone(),
            origin: Origin::Channel,
            hooks: None,
            model: None,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    if let Ok(mut ids) = state.hooks.ids.lock() {
        if ids.len() >= IDS_MAX {
            ids.clear();
        }
        ids.insert(key, (run_id.clone(), session.clone()));
    }
    record(
        &state.runtime,
        &tenant,
        AuditEventKind::ChannelMessage,
        json!({"channel": name, "from": message.from, "id": message.id, "accepted": true,
               "runId": run_id, "sessionKey": session}),
    )
    .await;
    if let Some(url) = channel.outbound_url.clone() {
        let (runtime, hooks, channel) =
            (state.runtime.clone(), state.hooks.clone(), channel.clone());
        let run = run_id.clone();
        tokio::spawn(async move {
            answer(runtime, hooks, name, channel, url, tenant, run, message).await;
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"runId": run_id, "sessionKey": session})),
    )
        .into_response())
}

/// Follows the run until it ends, then sends its answer out.
#[allow(clippy::too_many_arguments)]
async fn answer(
    runtime: Arc<Runtime>,
    hooks: Arc<Hooks>,
    name: String,
    channel: WebhookChannel,
    url: String,
    tenant: TenantId,
    run_id: RunId,
    message: Inbound,
) {
    let Some(run) = runtime.until_ended(&tenant, &run_id, FOLLOW_FOR).await else {
        return;
    };
    let text = run.content.clone().unwrap_or_default();
    let payload = json!({
        "channel": name, "to": message.from, "inReplyTo": message.id,
        "thread": message.thread, "runId": run_id, "status": run.status, "text": text,
    });
    let backoff = Duration::from_millis(channel.retry_backoff_ms);
    let delivery = deliver(
        &hooks.http,
        &url,
        &channel.secret,
        &payload,
        channel.max_attempts,
        backoff,
    )
    .await;
    record_delivery(&runtime, &tenant, &name, &payload, &delivery).await;
}

/// Records how an outbound message went (a dead letter keeps what was to be sent).
async fn record_delivery(
    runtime: &Runtime,
    tenant: &TenantId,
    channel: &str,
    payload: &Value,
    delivery: &Delivery,
) {
    let event = facio_services::channels::delivery_event(channel, payload, delivery);
    if let Err(e) = runtime
        .store()
        .apply_change(tenant, Change::Record, vec![(tenant.clone(), event)])
        .await
    {
        tracing::error!(error = %e, "could not record a channel delivery");
    }
}
