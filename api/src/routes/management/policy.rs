//! `/policy`: the Placet policy routes (rules, `enabled`, `skipCron`), persisted per
//! tenant. Until an operator changes it, a tenant's policy is `policy` from config.

use axum::extract::State;
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use facio_services::domain::TenantId;
use facio_services::policy::{Policy, PolicyRule};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Caller;
use super::json::Body;
use super::store_error;
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/policy", get(show).post(add).delete(remove))
        .route("/policy/all", delete(clear))
        .route("/policy/settings", patch(settings))
}

async fn load(state: &AppState, tenant: &TenantId) -> Result<Policy, ApiError> {
    let stored = state
        .runtime
        .store()
        .get_policy(tenant)
        .await
        .map_err(store_error)?;
    Policy::effective(stored, &state.config.policy)
        .map_err(|e| ApiError::internal(format!("the stored policy cannot be read: {e}")))
}

async fn save(
    state: &AppState,
    tenant: &TenantId,
    policy: &Policy,
) -> Result<Json<Value>, ApiError> {
    let doc = serde_json::to_value(policy).map_err(|e| ApiError::internal(e.to_string()))?;
    state
        .runtime
        .store()
        .put_policy(tenant, &doc)
        .await
        .map_err(store_error)?;
    Ok(Json(doc))
}

async fn show(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        serde_json::to_value(load(&state, caller.tenant()).await?)
            .map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

fn checked(rule: PolicyRule) -> Result<PolicyRule, ApiError> {
    rule.validate()
        .map_err(|e| ApiError::unprocessable(None, e.to_string()))?;
    Ok(rule)
}

async fn add(
    caller: Caller,
    State(state): State<AppState>,
    Body(rule): Body<PolicyRule>,
) -> Result<Json<Value>, ApiError> {
    let mut policy = load(&state, caller.tenant()).await?;
    policy
        .add(checked(rule)?)
        .map_err(|e| ApiError::unprocessable(None, e.to_string()))?;
    save(&state, caller.tenant(), &policy).await
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Body(rule): Body<PolicyRule>,
) -> Result<Json<Value>, ApiError> {
    let mut policy = load(&state, caller.tenant()).await?;
    if !policy.remove(&rule) {
        return Err(ApiError::not_found("no rule equal to this one exists"));
    }
    save(&state, caller.tenant(), &policy).await
}

async fn clear(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut policy = load(&state, caller.tenant()).await?;
    policy.rules.clear();
    save(&state, caller.tenant(), &policy).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    enabled: Option<bool>,
    skip_cron: Option<bool>,
}

async fn settings(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<Settings>,
) -> Result<Json<Value>, ApiError> {
    let mut policy = load(&state, caller.tenant()).await?;
    if let Some(enabled) = body.enabled {
        policy.settings.enabled = enabled;
    }
    if let Some(skip) = body.skip_cron {
        policy.settings.skip_cron = skip;
    }
    let _policy = save(&state, caller.tenant(), &policy).await?;
    Ok(Json(
        json!({"enabled": policy.settings.enabled, "skipCron": policy.settings.skip_cron}),
    ))
}
