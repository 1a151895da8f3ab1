//! Retry with exponential backoff and full jitter, honouring the provider's `Retry-After`.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use rand::Rng;
use tokio::sync::mpsc;

use super::{ProviderError, StreamDelta};

/// How failed calls are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before retry number `retry` (0 for the first retry). A wait the
    /// provider asked for wins over backoff; both are capped by `max_delay`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_delay);
        }
        let ceiling = self.backoff_ceiling(retry);
        // Full jitter (uniform in [0, ceiling]) spreads clients that failed together,
        // so they do not come back in lockstep.
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=ceiling_nanos))
    }

    /// `base_delay * 2^retry`, capped by `max_delay` (and safe from overflow).
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// How one attempt failed, as far as retrying is concerned.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Nothing reached the watcher yet: retry if the error allows it.
    BeforeOutput(ProviderError),
    /// Text was already forwarded; a retry would show it twice.
    AfterOutput(ProviderError),
}

impl From<ProviderError> for AttemptError {
    fn from(error: ProviderError) -> Self {
        Self::BeforeOutput(error)
    }
}

/// Forwards streamed text to the watcher and remembers whether any reached it, which
/// decides whether a later failure may still be retried.
pub(crate) struct DeltaForwarder<'a> {
    deltas: &'a mpsc::Sender<StreamDelta>,
    forwarded: bool,
}

impl<'a> DeltaForwarder<'a> {
    pub(crate) fn new(deltas: &'a mpsc::Sender<StreamDelta>) -> Self {
        Self {
            deltas,
            forwarded: false,
        }
    }

    pub(crate) async fn forward(&mut self, text: String) {
        // A watcher that went away does not stop the call: the answer is still recorded.
        if self.deltas.send(StreamDelta::Text(text)).await.is_ok() {
            self.forwarded = true;
        }
    }

    /// Classifies a failure of the attempt in progress.
    pub(crate) fn fail(&self, error: ProviderError) -> AttemptError {
        if self.forwarded {
            AttemptError::AfterOutput(error)
        } else {
            AttemptError::BeforeOutput(error)
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's retries are spent.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    provider: &str,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let mut retry = 0;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(AttemptError::AfterOutput(error)) => return Err(error),
            Err(AttemptError::BeforeOutput(error)) => error,
        };
        if !error.is_retryable() || retry >= policy.max_retries {
            return Err(error);
        }
        let asked = match &error {
            ProviderError::Http { retry_after, .. } => *retry_after,
            _ => None,
        };
        let wait = policy.delay(retry, asked, &mut rand::rng());
        tracing::warn!(
            provider,
            retry = retry + 1,
            max_retries = policy.max_retries,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            %error,
            "model call failed, retrying"
        );
        crate::telemetry::event(
            "gen_ai.client.retry",
            vec![
                opentelemetry::KeyValue::new("retry", i64::from(retry + 1)),
                opentelemetry::KeyValue::new(
                    "wait_ms",
                    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                ),
                opentelemetry::KeyValue::new(crate::telemetry::names::ERROR_TYPE, error.kind()),
            ],
        );
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP-date (IMF-fixdate, RFC 850 or
/// asctime). A date in the past means "now"; anything unreadable is ignored.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(value)
        .map(|date| date.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT")
                .ok()
                .map(|date| date.and_utc())
        })
        .or_else(|| {
            NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y")
                .ok()
                .map(|date| date.and_utc())
        })?;
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_doubles_until_the_cap_and_jitter_stays_below_it() {
        let policy = policy();
        let ceilings: Vec<u128> = (0..7)
            .map(|retry| policy.backoff_ceiling(retry).as_millis())
            .collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_secs(2));

        let mut rng = StdRng::seed_from_u64(7);
        for retry in 0..6 {
            let delays: Vec<Duration> = (0..200)
                .map(|_| policy.delay(retry, None, &mut rng))
                .collect();
            let ceiling = policy.backoff_ceiling(retry);
            assert!(delays.iter().all(|delay| *delay <= ceiling));
            // Jittered, not constant: the spread covers most of the window.
            let min = delays.iter().min().copied().unwrap_or_default();
            let max = delays.iter().max().copied().unwrap_or_default();
            assert!(max - min > ceiling / 2, "retry {retry}: {min:?}..{max:?}");
        }
    }

    #[test]
    fn retry_after_wins_over_backoff_but_is_capped() {
        let policy = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let asked = Some(Duration::from_millis(1500));
        assert_eq!(
            policy.delay(0, asked, &mut rng),
            Duration::from_millis(1500)
        );
        let asked = Some(Duration::from_secs(120));
        assert_eq!(policy.delay(0, asked, &mut rng), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .expect("valid date");
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thursday, 01-Jan-26 00:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Thu Jan  1 00:00:05 2026", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
