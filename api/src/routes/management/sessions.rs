//! `/sessions` (list, full history, delete) and `/health`, as Placet's dashboard reads
//! them.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use facio_services::auth::Role;
use facio_services::domain::{SessionKey, TenantId};
use facio_services::store::{AuditEventKind, SessionRecord, StoredMessage};
use serde::Deserialize;
use serde_json::json;

use super::json::Params;
use super::{Caller, change_event, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/sessions", get(list))
        .route("/sessions/{key}", get(one).delete(remove))
}

/// `GET /health`: the node is up, and who the caller is.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Health {
    #[schema(pattern = "^ok$")]
    status: &'static str,
    version: &'static str,
    active_sessions: usize,
    tenant: TenantId,
    /// The verified subject (`management-token` for the shared token).
    subject: String,
    roles: Vec<Role>,
}

async fn health(caller: Caller, State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let active = state.runtime.active_sessions().await?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        active_sessions: active,
        tenant: caller.tenant().clone(),
        subject: caller.subject().to_owned(),
        roles: caller.0.roles.clone(),
    }))
}

/// `GET /sessions`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SessionList {
    sessions: Vec<SessionRecord>,
}

/// `GET /sessions/{key}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SessionView {
    session: SessionRecord,
    /// The full history, oldest first.
    messages: Vec<StoredMessage>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    limit: Option<u32>,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Params(query): Params<ListQuery>,
) -> Result<Json<SessionList>, ApiError> {
    let limit = query.limit.unwrap_or(100).min(1000);
    let sessions = state
        .runtime
        .store()
        .list_sessions(caller.tenant(), limit)
        .await
        .map_err(store_error)?;
    Ok(Json(SessionList { sessions }))
}

async fn one(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
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
    Ok(Json(SessionView { session, messages }))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let key =
        SessionKey::new(key).map_err(|e| ApiError::not_found(format!("no such session: {e}")))?;
    if !reset(&state, &caller, key.clone(), None).await? {
        return Err(ApiError::not_found(format!("session {key} does not exist")));
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Deletes a session's history (the audit log and usage stay) and records it in the
/// same transaction; 409 while a turn of it runs or waits. `command` names the chat
/// command that asked for it (`new`), if one did. Returns whether it existed.
pub(super) async fn reset(
    state: &AppState,
    caller: &Caller,
    key: SessionKey,
    command: Option<&str>,
) -> Result<bool, ApiError> {
    let mut data = json!({"sessionKey": key, "reset": command.is_some()});
    if let Some(command) = command {
        data["command"] = json!(command);
    }
    let mut record = change_event(caller, AuditEventKind::SessionDeleted, data);
    record.session_key = Some(key.clone());
    let outcome = state
        .runtime
        .reset_session(caller.tenant().clone(), key, Some(record))
        .await?;
    outcome.map_err(|e| match e {
        facio_actors::ResetError::Busy => ApiError::conflict("session_busy", e.to_string()),
        facio_actors::ResetError::Store(reason) => ApiError::internal(reason),
    })
}
