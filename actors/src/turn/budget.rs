//! Token budgets, checked before each model call: the run's cap
//! (`limits.maxTokensPerRun`) and the tenant's daily and monthly budgets (its own
//! settings, else `limits.tokensPerDay` / `limits.tokensPerMonth`). A run at a budget
//! ends cleanly: a message saying so, an audit event, nothing half-written.

use chrono::Utc;
use facio_services::domain::{ChatMessage, TenantSettings};
use facio_services::store::{AuditEventKind, BudgetPeriod, UsageWindow, period_budgets};
use serde::Serialize;

use super::record::Recorder;
use super::{Progress, StopReason, TurnError, TurnTask};

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    Run,
    Day,
    Month,
}

impl BudgetScope {
    fn phrase(self) -> &'static str {
        match self {
            Self::Run => "this run used its budget",
            Self::Day => "this workspace used its daily budget",
            Self::Month => "this workspace used its monthly budget",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Self::Run => "send another message to continue",
            Self::Day => "it resets at midnight UTC, or an operator can raise it",
            Self::Month => "it resets on the first of the month (UTC), or an operator can raise it",
        }
    }
}

/// A budget that is used up.
struct Exhausted {
    scope: BudgetScope,
    limit: u64,
    used: u64,
}

impl TurnTask {
    /// The tenant's settings, taken once per turn from the tenant cache.
    pub(super) async fn settings(&self) -> Result<&TenantSettings, TurnError> {
        Ok(self
            .settings
            .get_or_try_init(|| {
                self.deps
                    .tenants
                    .settings(self.deps.store.as_ref(), &self.tenant)
            })
            .await?)
    }

    /// Stops the run with a budget message if a budget is used up.
    pub(super) async fn check_budgets(
        &self,
        recorder: &Recorder,
        progress: &mut Progress,
    ) -> Result<Option<StopReason>, TurnError> {
        let Some(exhausted) = self.exhausted(progress).await? else {
            return Ok(None);
        };
        let Exhausted { scope, limit, used } = exhausted;
        let text = format!(
            "I stopped because {} of {limit} tokens before finishing. What was done so far is \
             saved; {}.",
            scope.phrase(),
            scope.advice()
        );
        let message = ChatMessage::assistant(text.clone());
        recorder
            .note(
                &message,
                AuditEventKind::BudgetExhausted,
                serde_json::json!({ "scope": scope, "tokenLimit": limit, "used": used }),
            )
            .await?;
        progress.history.push(message);
        progress.content = Some(text);
        Ok(Some(StopReason::TokenBudgetExhausted { scope, limit }))
    }

    async fn exhausted(&self, progress: &Progress) -> Result<Option<Exhausted>, TurnError> {
        let settings = self.settings().await?;
        let limits = self.deps.config.limits.for_tenant(&self.tenant, settings);
        let cap = limits.tokens_per_run;
        if cap > 0 {
            // The whole run, not just this stage of it: a run resumed after a review
            // starts from what it spent before it waited (see `load_resumed`).
            let used = progress.usage.total_tokens;
            if used >= cap {
                return Ok(Some(Exhausted {
                    scope: BudgetScope::Run,
                    limit: cap,
                    used,
                }));
            }
        }
        for budget in period_budgets(&limits, Utc::now()) {
            if budget.limit == 0 {
                continue;
            }
            let used = self
                .deps
                .store
                .usage_totals(&self.tenant, &UsageWindow::since(budget.since))
                .await?
                .total_tokens;
            if used >= budget.limit {
                let scope = match budget.period {
                    BudgetPeriod::Day => BudgetScope::Day,
                    BudgetPeriod::Month => BudgetScope::Month,
                };
                return Ok(Some(Exhausted {
                    scope,
                    limit: budget.limit,
                    used,
                }));
            }
        }
        Ok(None)
    }
}
