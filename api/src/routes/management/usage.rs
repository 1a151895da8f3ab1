//! `GET /usage` (totals, groups and budgets over a window) and `/usage/runs/{runId}`
//! (the model calls of one run): what the caller's tenant spent.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use facio_services::domain::{RunId, SessionKey};
use facio_services::store::{UsageGrouping, UsageRecord, UsageTotals, UsageWindow, period_budgets};
use serde::Deserialize;

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

/// Sums of model calls, with the cost also in currency units (the rows keep exact
/// micro-units).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Totals {
    calls: u64,
    runs: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    /// Estimated cost in millionths of the price table's currency unit.
    cost_micros: u64,
    cost: f64,
}

impl From<&UsageTotals> for Totals {
    fn from(t: &UsageTotals) -> Self {
        Totals {
            calls: t.calls,
            runs: t.runs,
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            total_tokens: t.total_tokens,
            cost_micros: t.cost_micros,
            cost: t.cost_micros as f64 / 1_000_000.0,
        }
    }
}

/// One group's sums.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Group {
    /// The model, the UTC day (`YYYY-MM-DD`) or the session key.
    key: String,
    #[serde(flatten)]
    totals: Totals,
}

/// A budget over a calendar period and what is used of it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Budget {
    /// `null`: no budget.
    limit_tokens: Option<u64>,
    used_tokens: u64,
    /// Where the period began.
    since: DateTime<Utc>,
}

/// `GET /usage`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Summary {
    totals: Totals,
    #[schema(pattern = "^(model|day|session)$")]
    group_by: String,
    groups: Vec<Group>,
    /// By period (`day`, `month`).
    budgets: BTreeMap<String, Budget>,
    /// `null`: no cap per run.
    max_tokens_per_run: Option<u64>,
}

/// A run's tokens and estimated cost.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunSpend {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    cost_micros: u64,
    cost: f64,
}

/// `GET /usage/runs/{runId}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunUsage {
    run_id: RunId,
    session_key: SessionKey,
    usage: RunSpend,
    /// Its model calls, oldest first.
    calls: Vec<UsageRecord>,
}

async fn summary(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<UsageQuery>,
) -> Result<Json<Summary>, ApiError> {
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
    let mut budgets = BTreeMap::new();
    for budget in period_budgets(&limits, chrono::Utc::now()) {
        let used = store
            .usage_totals(tenant, &UsageWindow::since(budget.since))
            .await
            .map_err(store_error)?
            .total_tokens;
        budgets.insert(
            budget.period.as_str().to_owned(),
            Budget {
                limit_tokens: (budget.limit > 0).then_some(budget.limit),
                used_tokens: used,
                since: budget.since,
            },
        );
    }
    Ok(Json(Summary {
        totals: Totals::from(&totals),
        group_by: q.group_by.unwrap_or_else(|| "model".to_owned()),
        groups: groups
            .iter()
            .map(|g| Group {
                key: g.key.clone(),
                totals: Totals::from(&g.totals),
            })
            .collect(),
        budgets,
        max_tokens_per_run: (limits.tokens_per_run > 0).then_some(limits.tokens_per_run),
    }))
}

async fn run(
    caller: Caller,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<RunUsage>, ApiError> {
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
    Ok(Json(RunUsage {
        run_id,
        session_key: run.session_key,
        usage: RunSpend {
            prompt_tokens: run.usage.prompt_tokens,
            completion_tokens: run.usage.completion_tokens,
            total_tokens: run.usage.total_tokens,
            cost_micros,
            cost: cost_micros as f64 / 1_000_000.0,
        },
        calls,
    }))
}
