//! `POST /sessions/{key}/messages`, `GET /runs/{id}` and `GET /runs/{id}/events`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_actors::{Notice, Origin, TurnRequest};
use facio_services::domain::{RunId, SessionKey, TenantId, Usage};
use facio_services::store::{ReviewFilter, RunStatus};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;

use super::Caller;
use super::json::{Body, Params};
use super::store_error;
use crate::error::ApiError;
use crate::routes::AppState;

/// Longest `?wait=` honoured, in seconds.
const MAX_WAIT_S: u64 = 300;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sessions/{key}/messages", post(post_message))
        .route("/runs/{run_id}", get(get_run))
        .route("/runs/{run_id}/events", get(run_events))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewMessage {
    #[schema(pattern = "\\S")]
    content: String,
    /// Refused when present: the runtime sets a turn's origin from the surface that
    /// received it (this route is `interactive`), so a caller cannot claim `cron` and
    /// skip the gates with the policy's `skipCron`.
    #[schema(ignore)]
    origin: Option<serde_json::Value>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct WaitQuery {
    wait: Option<u64>,
}

async fn post_message(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
    Params(query): Params<WaitQuery>,
    onward: crate::cluster::Onward,
    Body(body): Body<NewMessage>,
) -> Result<Response, ApiError> {
    let key =
        SessionKey::new(key).map_err(|e| ApiError::invalid_request(Some("key"), e.to_string()))?;
    if body.content.trim().is_empty() {
        return Err(ApiError::unprocessable(
            Some("content"),
            "content: must not be empty",
        ));
    }
    if body.origin.is_some() {
        tracing::warn!(
            tenant = %caller.tenant(),
            session = %key,
            "a message tried to choose its own origin; refused"
        );
        return Err(ApiError::unprocessable(
            Some("origin"),
            "origin: is set by the runtime from the surface that received the message (this route is interactive); a request cannot choose it",
        ));
    }
    // A session another node holds (or should take) gets its message there.
    if !onward.forwarded
        && let Some(cluster) = &state.cluster
    {
        let bytes = serde_json::to_vec(&json!({"content": body.content}))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(answer) = cluster
            .route(
                &state.runtime,
                caller.tenant(),
                &key,
                &axum::http::Method::POST,
                &onward.uri,
                &onward.headers,
                bytes.into(),
            )
            .await?
        {
            return Ok(answer);
        }
    }
    let origin = Origin::Interactive;
    let mut notices = state.runtime.notices();
    let (run_id, _events) = state
        .runtime
        .submit(TurnRequest {
            tenant: caller.tenant().clone(),
            session_key: key.clone(),
            input: body.content,
            origin,
            hooks: None,
            model: None,
        })
        .await?;
    let Some(wait) = query.wait.filter(|w| *w > 0) else {
        let accepted = RunAccepted {
            run_id,
            session_key: key,
            status: None,
        };
        return Ok((StatusCode::ACCEPTED, Json(accepted)).into_response());
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.min(MAX_WAIT_S));
    loop {
        if let Some(run) = run_json(&state, caller.tenant(), &run_id).await?
            && run.settled(true)
        {
            return Ok(Json(run).into_response());
        }
        match tokio::time::timeout_at(deadline, notices.recv()).await {
            Err(_) => break,
            Ok(Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => break,
        }
    }
    let run = match run_json(&state, caller.tenant(), &run_id).await? {
        Some(run) => json!(run),
        None => json!(RunAccepted {
            run_id,
            session_key: key,
            status: Some(RunStatus::Running),
        }),
    };
    Ok((StatusCode::ACCEPTED, Json(run)).into_response())
}

/// A run accepted and not finished: where to follow it (`GET /runs/{runId}`). After
/// `?wait=S` ran out it is the whole run as far as it got ([`RunView`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunAccepted {
    run_id: RunId,
    session_key: SessionKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<RunStatus>,
}

/// A run as the API shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunView {
    run_id: RunId,
    session_key: SessionKey,
    status: RunStatus,
    /// Its answer, once it has one (none while it waits for a human).
    content: Option<String>,
    /// The ids of the reviews it opened, oldest first.
    reviews: Vec<String>,
    /// The tokens of every model call of the run, across every resume.
    usage: Usage,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl RunView {
    /// Whether it has ended (or stopped at a review, when `or_waiting`).
    fn settled(&self, or_waiting: bool) -> bool {
        match self.status {
            RunStatus::Queued | RunStatus::Running => false,
            RunStatus::AwaitingReview => or_waiting,
            _ => true,
        }
    }
}

/// The run as the API shows it, or `None` before its row exists.
pub(super) async fn run_json(
    state: &AppState,
    tenant: &TenantId,
    run_id: &RunId,
) -> Result<Option<RunView>, ApiError> {
    let store = state.runtime.store();
    let Some(run) = store.get_run(tenant, run_id).await.map_err(store_error)? else {
        return Ok(None);
    };
    let filter = ReviewFilter {
        run_id: Some(run_id.clone()),
        ..ReviewFilter::default()
    };
    let mut reviews = store
        .list_reviews(tenant, &filter)
        .await
        .map_err(store_error)?;
    reviews.reverse();
    let content = match run.status {
        RunStatus::AwaitingReview => None,
        _ => run.content,
    };
    Ok(Some(RunView {
        run_id: run.run_id,
        session_key: run.session_key,
        status: run.status,
        content,
        reviews: reviews.iter().map(|r| r.id.to_string()).collect(),
        usage: run.usage,
        created_at: run.created_at,
        finished_at: run.finished_at,
    }))
}

fn parse_run(run_id: String) -> Result<RunId, ApiError> {
    RunId::new(run_id).map_err(|e| ApiError::not_found(format!("no such run: {e}")))
}

async fn get_run(
    caller: Caller,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let run_id = parse_run(run_id)?;
    run_json(&state, caller.tenant(), &run_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("run {run_id} does not exist")))
}

/// SSE: the run's state now, then again each time it or one of its reviews changes,
/// until it ends (`event: end`).
async fn run_events(
    caller: Caller,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = caller.tenant().clone();
    let run_id = parse_run(run_id)?;
    let notices = state.runtime.notices();
    let first = run_json(&state, caller.tenant(), &run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id} does not exist")))?;
    let stream = futures::stream::unfold(
        (state, tenant, run_id, notices, Some(first), false),
        |(state, tenant, run_id, mut notices, pending, done)| async move {
            if done {
                return None;
            }
            let run = match pending {
                Some(run) => run,
                None => loop {
                    match notices.recv().await {
                        Ok(Notice::RunChanged {
                            run_id: changed, ..
                        }) if changed != run_id => continue,
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return None,
                    }
                    if let Ok(Some(run)) = run_json(&state, &tenant, &run_id).await {
                        break run;
                    }
                },
            };
            let finished = run.settled(false);
            let event = Event::default()
                .event(if finished { "end" } else { "run" })
                .data(json!(run).to_string());
            Some((Ok(event), (state, tenant, run_id, notices, None, finished)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
