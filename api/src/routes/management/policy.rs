//! `/policy`: the Placet policy routes (rules, `enabled`, `skipCron`), persisted per
//! tenant. Until an operator changes it, a tenant's policy is `policy` from config.

use axum::extract::State;
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use facio_services::domain::TenantId;
use facio_services::policy::{Policy, PolicyRule};
use facio_services::review::MAX_REVIEW_TIMEOUT_S;
use serde::Deserialize;
use serde_json::{Value, json};

use facio_services::store::{AuditEventKind, Change};
use facio_services::tenant_cache::TenantCacheEvent;

use super::json::Body;
use super::{Caller, make_change, store_error};
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

/// The settings part of a policy, as `PATCH /policy/settings` answers and the audit
/// log records it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SettingsView {
    enabled: bool,
    skip_cron: bool,
    /// `null`: the default (24 h).
    review_timeout_s: Option<u64>,
}

fn settings_view(policy: &Policy) -> SettingsView {
    SettingsView {
        enabled: policy.settings.enabled,
        skip_cron: policy.settings.skip_cron,
        review_timeout_s: policy.review_timeout_s,
    }
}

fn settings_json(policy: &Policy) -> Value {
    json!(settings_view(policy))
}

/// Saves `after` and records the change (`change` says what it was) in the audit log
/// with the caller as actor, in one transaction: a change whose audit event cannot
/// be written is not made.
pub(super) async fn commit(
    state: &AppState,
    caller: &Caller,
    before: &Policy,
    after: &Policy,
    change: Value,
) -> Result<Json<Policy>, ApiError> {
    let tenant = caller.tenant();
    let doc = serde_json::to_value(after).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut data = change;
    data["settingsBefore"] = settings_json(before);
    data["settingsAfter"] = settings_json(after);
    make_change(
        state,
        caller,
        tenant,
        Change::Policy(doc.clone()),
        std::slice::from_ref(tenant),
        AuditEventKind::PolicyChanged,
        data,
    )
    .await
    .map_err(store_error)?;
    state
        .runtime
        .tenant_cache()
        .changed(TenantCacheEvent::Policy(tenant.clone()));
    Ok(Json(after.clone()))
}

async fn show(caller: Caller, State(state): State<AppState>) -> Result<Json<Policy>, ApiError> {
    Ok(Json(load(&state, caller.tenant()).await?))
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
) -> Result<Json<Policy>, ApiError> {
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    let rule = checked(rule)?;
    let added = policy
        .add(rule.clone())
        .map_err(|e| ApiError::unprocessable(None, e.to_string()))?;
    if !added {
        // Already there: nothing changes, nothing is recorded.
        return Ok(Json(before));
    }
    let change = json!({"change": "rule_added", "rule": rule});
    commit(&state, &caller, &before, &policy, change).await
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Body(rule): Body<PolicyRule>,
) -> Result<Json<Policy>, ApiError> {
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    if !policy.remove(&rule) {
        return Err(ApiError::not_found("no rule equal to this one exists"));
    }
    let change = json!({"change": "rule_removed", "rule": rule});
    commit(&state, &caller, &before, &policy, change).await
}

async fn clear(caller: Caller, State(state): State<AppState>) -> Result<Json<Policy>, ApiError> {
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    policy.rules.clear();
    let change = json!({"change": "rules_cleared", "removed": before.rules});
    commit(&state, &caller, &before, &policy, change).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Settings {
    enabled: Option<bool>,
    skip_cron: Option<bool>,
    /// Seconds a review waits for a human; `null` goes back to the default (24 h).
    #[serde(default, deserialize_with = "super::json::present")]
    // The document's bound is a literal (the derive takes no constant); the
    // assertion below keeps it the shared one.
    #[schema(minimum = 1, maximum = 129600)]
    review_timeout_s: Option<Option<u64>>,
}

const _: () = assert!(MAX_REVIEW_TIMEOUT_S == 129_600);

async fn settings(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<Settings>,
) -> Result<Json<SettingsView>, ApiError> {
    let before = load(&state, caller.tenant()).await?;
    let mut policy = before.clone();
    if let Some(enabled) = body.enabled {
        policy.settings.enabled = enabled;
    }
    if let Some(skip) = body.skip_cron {
        policy.settings.skip_cron = skip;
    }
    if let Some(timeout) = body.review_timeout_s {
        if timeout.is_some_and(|t| t == 0 || t > MAX_REVIEW_TIMEOUT_S) {
            return Err(ApiError::unprocessable(
                Some("reviewTimeoutS"),
                format!(
                    "reviewTimeoutS: from 1 to {MAX_REVIEW_TIMEOUT_S} seconds, or null for the default"
                ),
            ));
        }
        policy.review_timeout_s = timeout;
    }
    if policy == before {
        return Ok(Json(settings_view(&policy)));
    }
    let change = json!({"change": "settings"});
    let _saved = commit(&state, &caller, &before, &policy, change).await?;
    Ok(Json(settings_view(&policy)))
}
