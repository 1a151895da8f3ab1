//! `POST /v1/chat/completions`, OpenAI-compatible, streamed and not.
//!
//! The session holds the conversation, so only the newest user message of the request
//! is new input; earlier messages a client resends are already in the session. The
//! session is chosen by the `X-Session-Key` header, else the `user` field, else
//! `api:default`.

use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use facio_actors::{Origin, StopReason, TurnEvent, TurnRequest, TurnSummary};
use facio_services::auth::Role;
use facio_services::domain::{SessionKey, TenantId, Usage};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use crate::error::ApiError;

const SESSION_HEADER: &str = "x-session-key";
const DEFAULT_SESSION: &str = "api:default";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/chat/completions", post(completions))
}

#[derive(Debug, Deserialize)]
struct ChatBody {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

async fn completions(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // The caller is known (and admitted under its rate limits) before its body is
    // read: an unauthenticated client cannot make the node buffer megabytes.
    let headers = request.headers().clone();
    // Once any auth is configured (JWT keys or a management token), `/v1` serves only
    // callers with a client or operator token of their tenant (or the management
    // token); with none at all it is the single-tenant local endpoint, and only on a
    // loopback bind.
    let (tenant, settings) = if state.auth_configured() {
        let identity = super::identity::identify(&state, &headers).await?;
        if !identity.may(&[Role::Client, Role::Operator]) {
            return Err(ApiError::forbidden(
                "this needs the role client or operator",
            ));
        }
        let runtime = &state.runtime;
        let settings = runtime
            .tenant_cache()
            .settings(runtime.store().as_ref(), &identity.tenant)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        (identity.tenant, settings)
    } else {
        if !super::identity::loopback(&state.config.api.host) {
            return Err(ApiError::unauthorized(format!(
                "no auth is configured and the node listens on {}, not loopback: set api.managementToken or auth keys before serving /v1 beyond this machine",
                state.config.api.host
            )));
        }
        let tenant = TenantId::default_tenant();
        let settings = super::identity::admit(&state, &tenant, None).await?;
        (tenant, settings)
    };
    let forwarded = request
        .extensions()
        .get::<crate::cluster::Forwarded>()
        .is_some();
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let bytes = axum::body::Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| {
            super::slow_body::unreadable(&rejection, rejection.status(), rejection.body_text())
        })?;
    let body: Result<Json<ChatBody>, JsonRejection> = Json::from_bytes(&bytes);
    let Json(body) = body.map_err(|rejection| {
        super::slow_body::unreadable(&rejection, rejection.status(), rejection.body_text())
    })?;
    let input = newest_user_text(&body.messages)?;
    if !settings.allows_model(&body.model) {
        return Err(ApiError::model_not_allowed(&body.model));
    }
    let session_key = session_key(&headers, body.user.as_deref())?;
    // A session another node holds (or should take) runs there; the caller gets its
    // answer, streamed as it comes, as if it ran here.
    // A node that stops taking turns between routing and submitting stored nothing:
    // the turn then goes where its session is now: while the session gives itself
    // up (its lease released a moment after its actor stopped), look again, within
    // a lease's length.
    let patience = state.cluster.as_ref().map(|c| c.patience());
    let deadline = patience.map(|p| tokio::time::Instant::now() + p);
    let (run_id, events) = loop {
        if !forwarded
            && let Some(cluster) = &state.cluster
            && let Some(answer) = cluster
                .route(
                    &state.runtime,
                    &tenant,
                    &session_key,
                    &method,
                    &uri,
                    &headers,
                    bytes.clone(),
                )
                .await?
        {
            return Ok(answer);
        }
        let submitted = state
            .runtime
            .submit(TurnRequest {
                tenant: tenant.clone(),
                session_key: session_key.clone(),
                input: input.clone(),
                origin: Origin::Api,
                hooks: None,
                // The model the request names is the model called.
                model: Some(body.model.clone()),
            })
            .await;
        match submitted {
            Err(facio_actors::RuntimeError::ShuttingDown)
                if !forwarded && deadline.is_some_and(|d| tokio::time::Instant::now() < d) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => break other?,
        }
    };
    let reply = Reply {
        id: format!("chatcmpl-{run_id}"),
        model: body.model,
        created: chrono::Utc::now().timestamp(),
    };
    let mut response = if body.stream.unwrap_or(false) {
        let include_usage = body.stream_options.unwrap_or_default().include_usage;
        Sse::new(stream(reply, events, include_usage))
            .keep_alive(KeepAlive::default())
            .into_response()
    } else {
        let summary = wait(events).await?;
        Json(reply.completion(&summary)?).into_response()
    };
    set_header(&mut response, "x-session-key", session_key.as_str());
    set_header(&mut response, "x-facio-run-id", run_id.as_str());
    Ok(response)
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn newest_user_text(messages: &[InMessage]) -> Result<String, ApiError> {
    let message = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .ok_or_else(|| {
            ApiError::invalid_request(
                Some("messages"),
                "messages must contain at least one user message",
            )
        })?;
    let text = match &message.content {
        Some(Value::String(text)) => text.clone(),
        // Content parts: the text parts, joined; other part types are not supported yet.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| {
                (p.get("type") == Some(&json!("text")))
                    .then(|| p.get("text")?.as_str())
                    .flatten()
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    if text.trim().is_empty() {
        return Err(ApiError::invalid_request(
            Some("messages"),
            "the newest user message has no text content",
        ));
    }
    Ok(text)
}

fn session_key(headers: &HeaderMap, user: Option<&str>) -> Result<SessionKey, ApiError> {
    if let Some(value) = headers.get(SESSION_HEADER) {
        let value = value.to_str().map_err(|_| {
            ApiError::invalid_request(Some("X-Session-Key"), "X-Session-Key must be visible ASCII")
        })?;
        return SessionKey::new(value)
            .map_err(|e| ApiError::invalid_request(Some("X-Session-Key"), e.to_string()));
    }
    let key = user.unwrap_or(DEFAULT_SESSION);
    SessionKey::new(key).map_err(|e| ApiError::invalid_request(Some("user"), e.to_string()))
}

async fn wait(mut events: mpsc::Receiver<TurnEvent>) -> Result<TurnSummary, ApiError> {
    while let Some(event) = events.recv().await {
        if let TurnEvent::Finished(summary) = event {
            return Ok(*summary);
        }
    }
    Err(ApiError::internal(
        "the turn ended without reporting its outcome",
    ))
}

/// The parts every chunk and completion repeat.
struct Reply {
    id: String,
    model: String,
    created: i64,
}

fn finish_reason(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::BudgetExhausted { .. } | StopReason::TokenBudgetExhausted { .. } => "length",
        _ => "stop",
    }
}

/// The error a caller gets for a turn that did not end with an answer.
fn failure(summary: &TurnSummary) -> Option<ApiError> {
    match &summary.stop {
        StopReason::Answered
        | StopReason::BudgetExhausted { .. }
        | StopReason::TokenBudgetExhausted { .. }
        | StopReason::AwaitingReview { .. } => None,
        StopReason::ProviderFailed(reason) => Some(ApiError::upstream(format!(
            "the model provider failed: {reason}"
        ))),
        StopReason::Cancelled => Some(ApiError::cancelled("the turn was cancelled")),
        StopReason::Interrupted => Some(ApiError::unavailable(
            "the gateway is shutting down; the turn was interrupted and its progress saved",
        )),
        StopReason::ModelNotAllowed(model) => Some(ApiError::model_not_allowed(model)),
        StopReason::Internal(reason) => Some(ApiError::internal(reason.clone())),
        StopReason::Fenced(reason) => Some(ApiError::unavailable(format!(
            "another node took over this session; the run continues there ({reason})"
        ))),
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    })
}

impl Reply {
    fn completion(&self, summary: &TurnSummary) -> Result<Value, ApiError> {
        if let Some(error) = failure(summary) {
            return Err(error);
        }
        Ok(json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": summary.content },
                "finish_reason": finish_reason(&summary.stop),
                "logprobs": null,
            }],
            "usage": usage_json(&summary.usage),
        }))
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Event {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": null }],
        });
        Event::default().data(chunk.to_string())
    }

    fn usage_chunk(&self, usage: &Usage) -> Event {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(usage),
        });
        Event::default().data(chunk.to_string())
    }
}

/// Turns the runtime's events into OpenAI chunks: a role chunk, content deltas, a
/// final chunk with `finish_reason`, the usage chunk when asked for, then `[DONE]`.
/// A turn that fails sends one `{"error":...}` frame instead of the ending.
fn stream(
    reply: Reply,
    events: mpsc::Receiver<TurnEvent>,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let opening = reply.chunk(json!({"role": "assistant", "content": ""}), None);
    let state = (reply, events, Some(opening), Vec::<Event>::new());
    futures::stream::unfold(
        state,
        move |(reply, mut events, opening, mut queued)| async move {
            if let Some(opening) = opening {
                return Some((Ok(opening), (reply, events, None, queued)));
            }
            if !queued.is_empty() {
                let next = queued.remove(0);
                return Some((Ok(next), (reply, events, None, queued)));
            }
            loop {
                match events.recv().await? {
                    TurnEvent::TextDelta(text) => {
                        let event = reply.chunk(json!({ "content": text }), None);
                        return Some((Ok(event), (reply, events, None, queued)));
                    }
                    TurnEvent::ToolStarted(_)
                    | TurnEvent::ToolFinished(_)
                    | TurnEvent::ReviewPending { .. } => continue,
                    TurnEvent::Finished(summary) => {
                        queued = ending(&reply, &summary, include_usage);
                        let first = queued.remove(0);
                        return Some((Ok(first), (reply, events, None, queued)));
                    }
                }
            }
        },
    )
}

fn ending(reply: &Reply, summary: &TurnSummary, include_usage: bool) -> Vec<Event> {
    if let Some(error) = failure(summary) {
        return vec![Event::default().data(error.body().to_string())];
    }
    let mut frames = Vec::new();
    if let StopReason::BudgetExhausted { .. }
    | StopReason::TokenBudgetExhausted { .. }
    | StopReason::AwaitingReview { .. } = summary.stop
    {
        // The budget and pending-review messages are the runtime's, not streamed by the model.
        frames.push(reply.chunk(json!({ "content": summary.content }), None));
    }
    frames.push(reply.chunk(json!({}), Some(finish_reason(&summary.stop))));
    if include_usage {
        frames.push(reply.usage_chunk(&summary.usage));
    }
    frames.push(Event::default().data("[DONE]"));
    frames
}
