//! Rate limits: per tenant, one GCRA limiter for the whole tenant and one keyed by
//! token, so a single noisy token cannot starve its tenant's other callers and a
//! tenant cannot starve the node. Quotas come from the tenant's own settings (changed
//! live through `/api/v1/tenants/{name}` or `/api/v1/settings`), else the config; 0
//! means no limit. Over a limit: 429 with `Retry-After`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use facio_services::config::TenantLimits;
use facio_services::domain::TenantId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Token keys kept per tenant before the idle ones are dropped.
const MAX_TRACKED_TOKENS: usize = 10_000;

#[derive(Default)]
pub(crate) struct Limits {
    tenants: Mutex<HashMap<TenantId, Arc<TenantLimiter>>>,
    clock: DefaultClock,
}

/// One tenant's limiters (none where the quota is 0) and the quotas they were built
/// with.
struct TenantLimiter {
    per_minute: u32,
    per_token_per_minute: u32,
    tenant: Option<DefaultDirectRateLimiter>,
    tokens: Option<DefaultKeyedRateLimiter<String>>,
}

impl TenantLimiter {
    fn new(limits: &TenantLimits) -> Self {
        Self {
            per_minute: limits.requests_per_minute,
            per_token_per_minute: limits.requests_per_minute_per_token,
            tenant: per_minute(limits.requests_per_minute).map(DefaultDirectRateLimiter::direct),
            tokens: per_minute(limits.requests_per_minute_per_token)
                .map(DefaultKeyedRateLimiter::keyed),
        }
    }

    fn matches(&self, limits: &TenantLimits) -> bool {
        self.per_minute == limits.requests_per_minute
            && self.per_token_per_minute == limits.requests_per_minute_per_token
    }
}

fn per_minute(n: u32) -> Option<Quota> {
    NonZeroU32::new(n).map(Quota::per_minute)
}

impl Limits {
    /// Admits one request of `tenant` made with `token` (hashed: no token is kept),
    /// under the quotas in `limits`. A changed quota starts its limiter afresh.
    pub fn admit(
        &self,
        tenant: &TenantId,
        token: Option<&str>,
        limits: &TenantLimits,
    ) -> Result<(), ApiError> {
        let limiter = {
            let mut tenants = self
                .tenants
                .lock()
                .map_err(|_| ApiError::internal("the rate limiter is unavailable"))?;
            match tenants.get(tenant) {
                Some(limiter) if limiter.matches(limits) => limiter.clone(),
                _ => {
                    let limiter = Arc::new(TenantLimiter::new(limits));
                    tenants.insert(tenant.clone(), limiter.clone());
                    limiter
                }
            }
        };
        // The token first: a token over its own limit must not use up its tenant's.
        if let (Some(token), Some(tokens)) = (token, &limiter.tokens) {
            if tokens.len() > MAX_TRACKED_TOKENS {
                tokens.retain_recent();
            }
            let key = hex::encode(Sha256::digest(token.as_bytes()));
            if let Err(not_until) = tokens.check_key(&key) {
                return Err(too_many(
                    tenant,
                    Over::Token,
                    not_until.wait_time_from(self.clock.now()),
                ));
            }
        }
        if let Some(Err(not_until)) = limiter.tenant.as_ref().map(|t| t.check()) {
            return Err(too_many(
                tenant,
                Over::Tenant,
                not_until.wait_time_from(self.clock.now()),
            ));
        }
        Ok(())
    }
}

/// Which limit a request is over.
#[derive(Clone, Copy)]
enum Over {
    Token,
    Tenant,
}

fn too_many(tenant: &TenantId, over: Over, wait: Duration) -> ApiError {
    let (who, limit) = match over {
        Over::Token => ("this token", "token"),
        Over::Tenant => ("the tenant", "tenant"),
    };
    facio_services::telemetry::metrics().rate_limited.add(
        1,
        &[
            opentelemetry::KeyValue::new("facio.limit", limit),
            facio_services::telemetry::metrics::tenant(tenant),
        ],
    );
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::rate_limited(
        format!("{who} is over its request rate limit; retry in {seconds}s"),
        seconds.max(1),
    )
}
