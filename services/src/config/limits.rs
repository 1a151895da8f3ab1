//! `limits`: request rate limits, per tenant and per token, and token budgets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{TenantId, TenantSettings};

/// `limits` area. Over a limit, a request gets 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per minute for a whole tenant (all its tokens); 0 means no limit.
    /// Default 600.
    pub tenant_requests_per_minute: u32,
    /// Requests per minute for one token; 0 means no limit. Default 300.
    pub token_requests_per_minute: u32,
    /// Per-tenant overrides of `tenantRequestsPerMinute`, by tenant name.
    pub tenants: BTreeMap<String, u32>,
    /// Most tokens (prompt + completion) one run may use; checked before each model
    /// call. 0 means no cap. Default 0.
    pub max_tokens_per_run: u64,
    /// Most tokens one tenant may use per UTC day, unless the tenant's own settings
    /// say otherwise. 0 means no budget. Default 0.
    pub tokens_per_day: u64,
    /// Most tokens one tenant may use per UTC calendar month, unless the tenant's own
    /// settings say otherwise. 0 means no budget. Default 0.
    pub tokens_per_month: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            tenant_requests_per_minute: 600,
            token_requests_per_minute: 300,
            tenants: BTreeMap::new(),
            max_tokens_per_run: 0,
            tokens_per_day: 0,
            tokens_per_month: 0,
        }
    }
}

/// What one tenant is held to: its own settings where it has them, else this config's
/// per-tenant override, else the config's default. Every limit is decided here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantLimits {
    /// Requests per minute for the whole tenant.
    pub requests_per_minute: u32,
    /// Requests per minute for each of its tokens.
    pub requests_per_minute_per_token: u32,
    /// Most tokens per run; 0 means no cap.
    pub tokens_per_run: u64,
    /// Most tokens per UTC day; 0 means no budget.
    pub tokens_per_day: u64,
    /// Most tokens per UTC calendar month; 0 means no budget.
    pub tokens_per_month: u64,
}

impl LimitsConfig {
    /// The limits `tenant` is held to, given its own `settings`.
    pub fn for_tenant(&self, tenant: &TenantId, settings: &TenantSettings) -> TenantLimits {
        TenantLimits {
            requests_per_minute: settings.requests_per_minute.unwrap_or_else(|| {
                self.tenants
                    .get(tenant.as_str())
                    .copied()
                    .unwrap_or(self.tenant_requests_per_minute)
            }),
            requests_per_minute_per_token: settings
                .requests_per_minute_per_token
                .unwrap_or(self.token_requests_per_minute),
            tokens_per_run: settings.tokens_per_run.unwrap_or(self.max_tokens_per_run),
            tokens_per_day: settings.tokens_per_day.unwrap_or(self.tokens_per_day),
            tokens_per_month: settings.tokens_per_month.unwrap_or(self.tokens_per_month),
        }
    }
}
