//! A tenant's own settings: which models it may use, how many tokens it may spend and
//! how fast it may call.

use serde::{Deserialize, Serialize};

/// Stored per tenant; absent fields fall back to the deployment's config
/// (`limits.tokensPerDay`, `limits.tokensPerMonth`; every model allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSettings {
    /// The models this tenant's runs may call (as configured in `agents.defaults.model`
    /// or named by a client); `"*"` matches every model. `None`: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Most tokens per UTC day; 0 means no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Most tokens per UTC calendar month; 0 means no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_month: Option<u64>,
    /// Most tokens one run may use; 0 means no cap. Overrides `limits.maxTokensPerRun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_run: Option<u64>,
    /// Requests per minute for the whole tenant (all its tokens). Overrides
    /// `limits.tenants.<name>` and `limits.tenantRequestsPerMinute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Requests per minute for each of the tenant's tokens. Overrides
    /// `limits.tokenRequestsPerMinute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute_per_token: Option<u32>,
}

impl TenantSettings {
    /// Whether runs of this tenant may call `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|models| models.iter().any(|m| m == model || m == "*"))
    }

    /// Applies a partial update: fields present in `patch` replace these.
    pub fn merge(&mut self, patch: TenantSettings) {
        if patch.models.is_some() {
            self.models = patch.models;
        }
        if patch.tokens_per_day.is_some() {
            self.tokens_per_day = patch.tokens_per_day;
        }
        if patch.tokens_per_month.is_some() {
            self.tokens_per_month = patch.tokens_per_month;
        }
        if patch.tokens_per_run.is_some() {
            self.tokens_per_run = patch.tokens_per_run;
        }
        if patch.requests_per_minute.is_some() {
            self.requests_per_minute = patch.requests_per_minute;
        }
        if patch.requests_per_minute_per_token.is_some() {
            self.requests_per_minute_per_token = patch.requests_per_minute_per_token;
        }
    }
}
