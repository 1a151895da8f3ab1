//! `GET /usage` (totals, groups and budgets over a window) and `/usage/runs/{runId}`
//! (the model calls of one run): what the caller's tenant spent.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use facio_services::domain::RunId;
use facio_services::store::{UsageGrouping, UsageTotals, UsageWindow, period_budgets};
use serde::Deserialize;
use serde_json::{Value, json};

use super::audit::time;
use super::json::Params;
use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/usage", get(summary))
        .route("/usage/runs/{run_id}", get(run))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct UsageQuery {
    #[param(format = DateTime)]
    since: Option<String>,
    #[param(format = DateTime)]
    until: Option<String>,
    /// `model` (the default), `day` or `session`.
    #[param(pattern = "^(model|day|session)$")]
    group_by: Option<String>,
}

/// Totals with the cost also in currency units (the rows keep exact micro-units).
fn totals_json(totals: &UsageTotals) -> Value {
    let mut value = serde_json::to_value(totals).unwrap_or_default();
    value["cost"] = json!(totals.cost_micros as f64 / 1_000_000.0);
    value
}

async fn summary(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    let grouping = match q.group_by.as_deref().unwrap_or("model") {
        "model" => UsageGrouping::Model,
        "day" => UsageGrouping::Day,
        "session" => UsageGrouping::Session,
        other => {
            return Err(ApiError::invalid_request(
                Some("groupBy"),
                format!("groupBy must be model, day or session, not {other:?}"),
            ));
        }
    };
    let window = UsageWindow {
        since: time("since", q.since)?,
        until: time("until", q.until)?,
    };
    let store = state.runtime.store();
    let tenant = caller.tenant();
    let totals = store
        .usage_totals(tenant, &window)
        .await
        .map_err(store_error)?;
    let groups = store
        .usage_groups(tenant, &window, grouping)
        .await
        .map_err(store_error)?;
    let settings = store.tenant_settings(tenant).await.map_err(store_error)?;
    let limits = state.config.limits.for_tenant(tenant, &settings);
    let mut budgets = serde_json::Map::new();
    for budget in period_budgets(&limits, chrono::Utc::now()) {
        let used = store
            .usage_totals(tenant, &UsageWindow::since(budget.since))
            .await
            .map_err(store_error)?
            .total_tokens;
        budgets.insert(
            budget.period.as_str().to_owned(),
            json!({"limitTokens": (budget.limit > 0).then_some(budget.limit), "usedTokens": used, "since": budget.since}),
        );
    }
    Ok(Json(json!({
        "totals": totals_json(&totals),
        "groupBy": q.group_by.as_deref().unwrap_or("model"),
        "groups": groups.iter().map(|g| {
            let mut value = totals_json(&g.totals);
            value["key"] = json!(g.key);
            value
        }).collect::<Vec<_>>(),
        "budgets": budgets,
        "maxTokensPerRun": (limits.tokens_per_run > 0).then_some(limits.tokens_per_run),
    })))
}

async fn run(
    caller: Caller,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found("run does not exist");
    let run_id = RunId::new(run_id).map_err(|_| not_found())?;
    let store = state.runtime.store();
    let run = store
        .get_run(caller.tenant(), &run_id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    let calls = store
        .run_usage(caller.tenant(), &run_id)
        .await
        .map_err(store_error)?;
    let cost_micros: u64 = calls.iter().map(|c| c.cost_micros).sum();
    Ok(Json(json!({
        "runId": run_id,
        "sessionKey": run.session_key,
        "usage": {
            "promptTokens": run.usage.prompt_tokens,
            "completionTokens": run.usage.completion_tokens,
            "totalTokens": run.usage.total_tokens,
            "costMicros": cost_micros,
            "cost": cost_micros as f64 / 1_000_000.0,
        },
        "calls": calls,
    })))
}
