//! `/commands`: what a chat user would type as `/stop`, `/new` and `/status`, for a
//! session named in the body.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use facio_services::domain::SessionKey;
use facio_services::store::{ReviewFilter, ReviewStatus};
use serde::Deserialize;
use serde_json::{Value, json};

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
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"sessionKey": key, "stopped": stopped})))
}

/// Starts the session afresh: its history is deleted (the audit log stays).
async fn new(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<SessionCommand>,
) -> Result<Json<Value>, ApiError> {
    let key = session_key(body)?;
    let cleared = super::sessions::reset(&state, &caller, key.clone(), Some("new")).await?;
    Ok(Json(json!({"sessionKey": key, "cleared": cleared})))
}

async fn status(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeS": chrono::Utc::now().timestamp() - state.started,
        "model": defaults.model,
        "provider": defaults.provider,
        "activeSessions": state.runtime.active_sessions().await?,
        "runningRuns": running.len(),
        "pendingReviews": pending.len(),
    })))
}
