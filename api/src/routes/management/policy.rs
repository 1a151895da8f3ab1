//! `/policy`: the Placet policy routes (rules, `enabled`, `skipCron`), persisted per
//! tenant. Until an operator changes it, a tenant's policy is `policy` from config.

use axum::extract::State;
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use facio_services::domain::TenantId;
use facio_services::policy::{Policy, PolicyRule};
use serde::Deserialize;
use serde_json::{Value, json};

use facio_services::store::AuditEventKind;
use facio_services::tenant_cache::TenantCacheEvent;

use super::json::Body;
use super::{Caller, audit_change, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/policy", get(show).post(add).delete(remove))
        .route("/policy/all", delete(clear))
        .route("/policy/settings", patch(settings))
}

pub(super) async fn load(state: &AppState, tenant: &TenantId) -> Result<Policy, ApiError> {
    let stored = state
        .runtime
        .store()
        .get_policy(tenant)
        .await
        .map_err(store_error)?;
    Policy::effective(stored, &state.config.policy)
        .map_err(|e| ApiError::internal(format!("the stored policy cannot be read: {e}")))
}

async fn put(state: &AppState, tenant: &TenantId, policy: &Policy) -> Result<Value, ApiError> {
    let doc = serde_json::to_value(policy).map_err(|e| ApiError::internal(e.to_string()))?;
    state
        .runtime
        .store()
        .put_policy(tenant, &doc)
        .await
        .map_err(store_error)?;
    state
        .runtime
        .tenant_cache()
        .changed(TenantCacheEvent::Policy(tenant.clone()));
    Ok(doc)
}

/// Saves `after` and records the change (`change` says what it was) in the audit log
/// with the caller as actor. A change whose audit event cannot be written is taken
/// back: the policy is put back as it was.
pub(super) async fn commit(
    state: &AppState,
    caller: &Caller,
    before: &Policy,
    after: &Policy,
    change: Value,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant();
    let doc = put(state, tenant, after).await?;
    let mut data = change;
    data["surface"] = json!("api");
    data["settingsBefore"] =
        json!({"enabled": before.settings.enabled, "skipCron": before.settings.skip_cron});
    data["settingsAfter"] =
        json!({"enabled": after.settings.enabled, "skipCron": after.settings.skip_cron});
    if let Err(e) = audit_change(state, caller, tenant, AuditEventKind::PolicyChanged, data).await {
        put(state, tenant, before).await?;
        return Err(e);
    }
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
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    let rule = checked(rule)?;
    let added = policy
        .add(rule.clone())
        .map_err(|e| ApiError::unprocessable(None, e.to_string()))?;
    if !added {
        return Ok(Json(put(&state, caller.tenant(), &policy).await?));
    }
    let change = json!({"change": "rule_added", "rule": rule});
    commit(&state, &caller, &before, &policy, change).await
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Body(rule): Body<PolicyRule>,
) -> Result<Json<Value>, ApiError> {
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    if !policy.remove(&rule) {
        return Err(ApiError::not_found("no rule equal to this one exists"));
    }
    let change = json!({"change": "rule_removed", "rule": rule});
    commit(&state, &caller, &before, &policy, change).await
}

async fn clear(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    policy.rules.clear();
    let change = json!({"change": "rules_cleared", "removed": before.rules});
    commit(&state, &caller, &before, &policy, change).await
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
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    if let Some(enabled) = body.enabled {
        policy.settings.enabled = enabled;
    }
    if let Some(skip) = body.skip_cron {
        policy.settings.skip_cron = skip;
    }
    let change = json!({"change": "settings"});
    let _saved = commit(&state, &caller, &before, &policy, change).await?;
    Ok(Json(
        json!({"enabled": policy.settings.enabled, "skipCron": policy.settings.skip_cron}),
    ))
}
