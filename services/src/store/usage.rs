//! Usage rows (one per model call) and the sums budgets and `/api/v1/usage` read.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::config::TenantLimits;
use crate::domain::{RunId, SessionKey, Usage};

/// One model call's spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUsage {
    pub run_id: RunId,
    pub session_key: SessionKey,
    pub model: String,
    pub usage: Usage,
    /// Estimated cost in millionths of the price table's currency unit.
    pub cost_micros: u64,
}

/// A sum of usage rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    pub calls: u64,
    pub runs: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cost_micros: u64,
}

/// How `/usage` groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageGrouping {
    Model,
    Day,
    Session,
}

/// Which rows to sum: `[since, until)`, both optional.
#[derive(Debug, Clone, Default)]
pub struct UsageWindow {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One row of a usage listing: a model call, or a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageGroup {
    /// The model, the UTC day (`YYYY-MM-DD`) or the session key.
    pub key: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// One model call of a run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cost_micros: u64,
    pub at: DateTime<Utc>,
}

impl UsageWindow {
    /// Everything from `since` on.
    pub fn since(since: DateTime<Utc>) -> Self {
        Self {
            since: Some(since),
            until: None,
        }
    }
}

/// A tenant's budget over a calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodBudget {
    pub period: BudgetPeriod,
    /// Most tokens in the period; 0 means no budget.
    pub limit: u64,
    /// Where the current period started.
    pub since: DateTime<Utc>,
}

/// Which calendar period a budget covers (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    Day,
    Month,
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// The tenant's day and month budgets at `now`.
pub fn period_budgets(limits: &TenantLimits, now: DateTime<Utc>) -> [PeriodBudget; 2] {
    [
        PeriodBudget {
            period: BudgetPeriod::Day,
            limit: limits.tokens_per_day,
            since: day_start(now),
        },
        PeriodBudget {
            period: BudgetPeriod::Month,
            limit: limits.tokens_per_month,
            since: month_start(now),
        },
    ]
}

/// Midnight UTC of `now`'s day: where daily budgets start.
fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// Midnight UTC of the first of `now`'s month: where monthly budgets start.
fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}
