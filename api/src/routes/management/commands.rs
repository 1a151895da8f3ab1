//! `/commands`: what a chat user would type as `/stop`, `/new` and `/status`, for a
//! session named in the body.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use facio_services::domain::SessionKey;
use facio_services::store::{ReviewFilter, ReviewStatus};
use serde::Deserialize;
use serde_json::json;

use super::json::Body;
use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/commands/stop", post(stop))
        .route("/commands/new", post(new))
        .route("/commands/status", get(status))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SessionCommand {
    #[schema(value_type = SessionKey)]
    session_key: String,
}

fn session_key(body: SessionCommand) -> Result<SessionKey, ApiError> {
    SessionKey::new(body.session_key)
        .map_err(|e| ApiError::unprocessable(Some("sessionKey"), format!("sessionKey: {e}")))
}

/// Cancels the session's running turn and any queued behind it.
async fn stop(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<SessionCommand>,
) -> Result<Json<Stopped>, ApiError> {
    let key = session_key(body)?;
    let stopped = state
        .runtime
        .cancel(caller.tenant().clone(), key.clone())
        .await?;
    if stopped {
        super::audit_change(
            &state,
            &caller,
            caller.tenant(),
            facio_services::store::AuditEventKind::SessionStopped,
            json!({"sessionKey": key, "command": "stop"}),
        )
        .await?;
    }
    Ok(Json(Stopped {
        session_key: key,
        stopped,
    }))
}

/// `POST /commands/stop`: whether a turn or a waiting run was stopped.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Stopped {
    session_key: SessionKey,
    stopped: bool,
}

/// `POST /commands/new`: whether there was a history to clear.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Cleared {
    session_key: SessionKey,
    cleared: bool,
}

/// `GET /commands/status`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Status {
    version: &'static str,
    /// Seconds since the node started.
    uptime_s: i64,
    /// The default model (`agents.defaults.model`).
    model: String,
    provider: Option<String>,
    /// Session actors live on this node.
    active_sessions: usize,
    /// The tenant's runs running now.
    running_runs: usize,
    /// The tenant's reviews waiting for a human.
    pending_reviews: usize,
}

/// Starts the session afresh: its history is deleted (the audit log stays).
async fn new(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<SessionCommand>,
) -> Result<Json<Cleared>, ApiError> {
    let key = session_key(body)?;
    let cleared = super::sessions::reset(&state, &caller, key.clone(), Some("new")).await?;
    Ok(Json(Cleared {
        session_key: key,
        cleared,
    }))
}

async fn status(caller: Caller, State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    let store = state.runtime.store();
    let running = store
        .running_runs(caller.tenant())
        .await
        .map_err(store_error)?;
    let pending = store
        .list_reviews(
            caller.tenant(),
            &ReviewFilter {
                status: Some(ReviewStatus::Pending),
                limit: Some(1000),
                ..ReviewFilter::default()
            },
        )
        .await
        .map_err(store_error)?;
    let defaults = &state.config.agents.defaults;
    Ok(Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: chrono::Utc::now().timestamp() - state.started,
        model: defaults.model.clone(),
        provider: defaults.provider.clone(),
        active_sessions: state.runtime.active_sessions().await?,
        running_runs: running.len(),
        pending_reviews: pending.len(),
    }))
}
