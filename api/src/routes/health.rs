//! `/health`, `/healthz`, `/readyz`: liveness and readiness for load balancers.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use facio_services::config::ExecSandbox;
use facio_services::store::StoreCounts;
use facio_services::tools::{SandboxStatus, sandbox_status};

use super::AppState;
use crate::error::ApiError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    version: &'static str,
    active_sessions: usize,
    sandbox: Sandbox,
    /// Store commits and reads since the node started (the load test divides them
    /// by turns).
    store: StoreCounts,
}

/// How `exec` commands are confined on this node.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sandbox {
    /// `tools.exec.sandbox`: `auto`, `on` or `off`.
    mode: ExecSandbox,
    /// Whether commands run sandboxed now.
    active: bool,
    /// What this machine lacks, when commands cannot be sandboxed.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<String>,
    #[serde(flatten)]
    status: &'static SandboxStatus,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
}

/// Ready when healthy and not draining: a node that began shutting down answers 503
/// at once, so load balancers stop sending it new work while its turns finish.
async fn ready(state: State<AppState>) -> Result<Json<Health>, ApiError> {
    if state.runtime.draining() {
        return Err(ApiError::unavailable(
            "draining: this node is shutting down and takes no new turns",
        ));
    }
    health(state).await
}

/// Healthy when the runtime's actors answer.
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let active_sessions = state
        .runtime
        .active_sessions()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let tools = &state.config.tools;
    let status = sandbox_status();
    let missing = status.missing(tools.restrict_to_workspace);
    let mode = tools.exec.sandbox;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        active_sessions,
        store: state.runtime.store().counts(),
        sandbox: Sandbox {
            mode,
            active: mode != ExecSandbox::Off && missing.is_none(),
            missing,
            status,
        },
    }))
}
