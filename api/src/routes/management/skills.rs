//! `/skills` and `/scripts`: what the tenant's workspace offers the agent, as the
//! system prompt lists it.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use facio_services::{scripts, skills};

use super::Caller;
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/skills", get(list_skills))
        .route("/scripts", get(list_scripts))
}

/// `GET /skills`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SkillList {
    skills: Vec<skills::Skill>,
}

/// `GET /scripts`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ScriptList {
    scripts: Vec<scripts::Script>,
}

async fn list_skills(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<SkillList>, ApiError> {
    let skills = in_workspace(&state, &caller, skills::list_skills).await?;
    Ok(Json(SkillList { skills }))
}

async fn list_scripts(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ScriptList>, ApiError> {
    let scripts = in_workspace(&state, &caller, scripts::list_scripts).await?;
    Ok(Json(ScriptList { scripts }))
}

/// Runs `list` on the caller's tenant workspace, off the async threads (it reads files).
async fn in_workspace<T: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    list: fn(&std::path::Path) -> T,
) -> Result<T, ApiError> {
    let workspace = state.config.tenant_workspace_dir(caller.tenant());
    tokio::task::spawn_blocking(move || list(&workspace))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}
