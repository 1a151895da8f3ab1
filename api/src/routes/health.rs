//! `/health`, `/healthz`, `/readyz`: liveness and readiness for load balancers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    version: &'static str,
    active_sessions: usize,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(health))
}

/// Healthy when the runtime's actors answer.
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let active_sessions = state
        .runtime
        .active_sessions()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        active_sessions,
    }))
}
