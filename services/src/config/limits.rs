//! `limits`: request rate limits, per tenant and per token, and token budgets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `limits` area. Over a limit, a request gets 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per minute for a whole tenant (all its tokens). Default 600.
    pub tenant_requests_per_minute: u32,
    /// Requests per minute for one token. Default 300.
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
