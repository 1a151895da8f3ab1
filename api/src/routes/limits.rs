//! Rate limits: one GCRA limiter keyed by tenant and one keyed by token, so a single
//! noisy token cannot starve its tenant's other callers and a tenant cannot starve
//! the node. Over a limit: 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use facio_services::config::LimitsConfig;
use facio_services::domain::TenantId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub(crate) struct Limits {
    tenants: Vec<(TenantId, Arc<DefaultKeyedRateLimiter<String>>)>,
    tenant_default: DefaultKeyedRateLimiter<String>,
    tokens: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        let tenants = config
            .tenants
            .iter()
            .filter_map(|(name, n)| {
                let tenant = TenantId::new(name.clone()).ok()?;
                Some((
                    tenant,
                    Arc::new(DefaultKeyedRateLimiter::keyed(per_minute(*n))),
                ))
            })
            .collect();
        Limits {
            tenants,
            tenant_default: DefaultKeyedRateLimiter::keyed(per_minute(
                config.tenant_requests_per_minute,
            )),
            tokens: DefaultKeyedRateLimiter::keyed(per_minute(config.token_requests_per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Admits one request of `tenant` made with `token` (hashed: no token is kept).
    pub fn admit(&self, tenant: &TenantId, token: Option<&str>) -> Result<(), ApiError> {
        let own = self
            .tenants
            .iter()
            .find(|(t, _)| t == tenant)
            .map(|(_, l)| l.as_ref());
        let tenant_limiter = own.unwrap_or(&self.tenant_default);
        if let Err(not_until) = tenant_limiter.check_key(&tenant.to_string()) {
            return Err(too_many(
                "the tenant",
                not_until.wait_time_from(self.clock.now()),
            ));
        }
        if let Some(token) = token {
            let key = hex::encode(Sha256::digest(token.as_bytes()));
            if let Err(not_until) = self.tokens.check_key(&key) {
                return Err(too_many(
                    "this token",
                    not_until.wait_time_from(self.clock.now()),
                ));
            }
        }
        Ok(())
    }
}

fn too_many(who: &str, wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::rate_limited(
        format!("{who} is over its request rate limit; retry in {seconds}s"),
        seconds.max(1),
    )
}
