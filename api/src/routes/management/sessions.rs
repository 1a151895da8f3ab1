//! `/sessions` (list and full history) and `/health`, as Placet's dashboard reads them.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use facio_services::auth::Role;
use facio_services::domain::SessionKey;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/sessions", get(list))
        .route("/sessions/{key}", get(one))
}

async fn health(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Operator, Role::Reviewer, Role::Client])?;
    let active = state.runtime.active_sessions().await?;
    Ok(Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "activeSessions": active,
        "tenant": caller.tenant(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Operator, Role::Reviewer])?;
    let limit = query.limit.unwrap_or(100).min(1000);
    let sessions = state
        .runtime
        .store()
        .list_sessions(caller.tenant(), limit)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"sessions": sessions})))
}

async fn one(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Operator, Role::Reviewer])?;
    let key =
        SessionKey::new(key).map_err(|e| ApiError::not_found(format!("no such session: {e}")))?;
    let store = state.runtime.store();
    let session = store
        .get_session(caller.tenant(), &key)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("session {key} does not exist")))?;
    let messages = store
        .history(caller.tenant(), &key)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"session": session, "messages": messages})))
}
