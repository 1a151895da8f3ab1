//! Webhook channels: what is signed and how (HMAC-SHA256 over `"<timestamp>.<body>"`,
//! `X-Facio-Timestamp` and `X-Facio-Signature: sha256=<hex>`), the checks an inbound
//! message passes (fresh timestamp, signature in constant time, never seen before),
//! and outbound delivery with retries and backoff.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{AuditEventKind, NewAuditEvent};

mod tool;

pub use tool::{MESSAGE, message_spec, message_tool};

pub const TIMESTAMP_HEADER: &str = "x-facio-timestamp";
pub const SIGNATURE_HEADER: &str = "x-facio-signature";
/// Most signatures remembered for replay checks; past it the oldest go first.
const SEEN_MAX: usize = 100_000;

type HmacSha256 = Hmac<Sha256>;

/// The `X-Facio-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why an inbound message was refused (each is a 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the X-Facio-Timestamp and X-Facio-Signature headers are required")]
    Unsigned,
    #[error("X-Facio-Timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the message was signed {0}s away from now, outside the {1}s window")]
    Stale(i64, u64),
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("this signed message was already received")]
    Replayed,
}

/// Checks a signed message: fresh, signed with `secret`, not seen before (then
/// remembered until it is stale anyway).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    window_s: u64,
    seen: &ReplayGuard,
) -> Result<(), Refusal> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(Refusal::Unsigned);
    };
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::BadTimestamp)?;
    let skew = now.saturating_sub(at);
    if skew.unsigned_abs() > window_s {
        return Err(Refusal::Stale(skew, window_s));
    }
    let Some(given) = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return Err(Refusal::BadSignature);
    };
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| Refusal::BadSignature)?;
    mac.update(at.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // Constant time: `verify_slice` compares without an early exit.
    mac.verify_slice(&given)
        .map_err(|_| Refusal::BadSignature)?;
    if !seen.first_time(
        signature.trim(),
        Duration::from_secs(window_s.saturating_mul(2)),
    ) {
        return Err(Refusal::Replayed);
    }
    Ok(())
}

/// The signatures accepted within their window, so a replayed message is refused.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<String, Instant>>,
}

impl ReplayGuard {
    /// Whether `signature` is new (it is remembered for `keep`).
    pub fn first_time(&self, signature: &str, keep: Duration) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        let now = Instant::now();
        if seen.len() >= SEEN_MAX {
            seen.retain(|_, until| *until > now);
        }
        if seen.len() >= SEEN_MAX
            && let Some(oldest) = seen
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
        match seen.get(signature) {
            Some(until) if *until > now => false,
            _ => {
                seen.insert(signature.to_owned(), now + keep);
                true
            }
        }
    }
}

/// How one outbound message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered {
        attempts: u32,
    },
    /// Every attempt failed: the last error.
    DeadLetter {
        attempts: u32,
        error: String,
    },
}

/// POSTs `payload` to `url`, signed with `secret`, trying up to `attempts` times
/// (waiting `backoff`, doubled each time, between them). A 2xx answer delivers; a 4xx
/// other than 408 and 429 is final (retrying would not change it).
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    payload: &serde_json::Value,
    attempts: u32,
    backoff: Duration,
) -> Delivery {
    let body = payload.to_string();
    let mut wait = backoff;
    let mut last = String::new();
    for attempt in 1..=attempts.max(1) {
        let now = chrono::Utc::now().timestamp();
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, sign(secret, now, body.as_bytes()))
            .body(body.clone())
            .timeout(Duration::from_secs(15))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                return Delivery::Delivered { attempts: attempt };
            }
            Ok(response) => {
                let status = response.status().as_u16();
                last = format!("HTTP {status}");
                if (400..500).contains(&status) && status != 408 && status != 429 {
                    return Delivery::DeadLetter {
                        attempts: attempt,
                        error: format!("{last} (not retried)"),
                    };
                }
            }
            Err(e) => last = describe(&e),
        }
        if attempt < attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    Delivery::DeadLetter {
        attempts: attempts.max(1),
        error: last,
    }
}

/// Where a channel is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelSource {
    /// `channels.webhooks` of the node's config (inbound at `/hooks/<name>`).
    Config,
    /// Stored for the tenant through `/api/v1/channels` (inbound at
    /// `/hooks/<tenant>/<name>`, its secret a `${credentials.KEY}` reference).
    Tenant,
}

/// The tenant's webhook channels: the config's that are its own, then those stored
/// for it (a stored one never shadows the config's).
pub async fn tenant_channels(
    config: &std::collections::BTreeMap<String, crate::config::WebhookChannel>,
    store: &dyn crate::store::Store,
    tenant: &crate::domain::TenantId,
) -> Result<Vec<(String, crate::config::WebhookChannel, ChannelSource)>, crate::store::StoreError> {
    let mut channels: Vec<_> = config
        .iter()
        .filter(|(_, c)| c.belongs_to(tenant))
        .map(|(name, c)| (name.clone(), c.clone(), ChannelSource::Config))
        .collect();
    let stored = store
        .integrations(tenant, crate::store::IntegrationKind::Channel)
        .await?;
    for (name, definition) in stored {
        if config.contains_key(&name) {
            continue;
        }
        match serde_json::from_value::<crate::config::WebhookChannel>(definition) {
            Ok(channel) => channels.push((name, channel, ChannelSource::Tenant)),
            Err(e) => {
                tracing::warn!(channel = %name, error = %e, "a stored channel does not parse")
            }
        }
    }
    Ok(channels)
}

/// `channel` with its secret's `${credentials.KEY}` resolved from `secrets`.
pub fn resolved(
    channel: &crate::config::WebhookChannel,
    secrets: &crate::vault::Secrets,
) -> Result<crate::config::WebhookChannel, String> {
    if crate::vault::placeholder_keys(&channel.secret).is_empty() {
        return Ok(channel.clone());
    }
    let (secret, _) = secrets
        .resolve(&channel.secret)
        .map_err(|e| format!("the channel's secret: {e}"))?;
    Ok(crate::config::WebhookChannel {
        secret,
        ..channel.clone()
    })
}

/// The audit event of an outbound message: delivered, or a dead letter that keeps
/// what was to be sent (`payload` holds `to`, `inReplyTo`, `runId`, `text`).
pub fn delivery_event(
    channel: &str,
    payload: &serde_json::Value,
    delivery: &Delivery,
) -> NewAuditEvent {
    let mut data = serde_json::json!({"channel": channel, "to": payload["to"],
        "inReplyTo": payload["inReplyTo"], "runId": payload["runId"]});
    match delivery {
        Delivery::Delivered { attempts } => {
            data["status"] = "delivered".into();
            data["attempts"] = (*attempts).into();
        }
        Delivery::DeadLetter { attempts, error } => {
            tracing::warn!(channel, attempts, error = %error, "a channel message became a dead letter");
            data["status"] = "dead_letter".into();
            data["attempts"] = (*attempts).into();
            data["error"] = error.clone().into();
            data["text"] = payload["text"].clone();
        }
    }
    NewAuditEvent {
        kind: AuditEventKind::ChannelDelivery,
        session_key: None,
        run_id: None,
        actor: "channel".to_owned(),
        data,
    }
}

/// A request error with its causes (reqwest's own message is only the outer one).
pub fn describe(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-webhook-secret-of-some-length";

    #[test]
    fn a_signed_message_passes_once_and_every_tampering_is_refused() {
        let guard = ReplayGuard::default();
        let body = br#"{"from":"alice","text":"hi"}"#;
        let now = 1_800_000_000;
        let signature = sign(SECRET, now, body);
        let check = |ts: &str, sig: &str, body: &[u8], at: i64| {
            verify(SECRET, Some(ts), Some(sig), body, at, 300, &guard)
        };
        assert_eq!(check(&now.to_string(), &signature, body, now + 10), Ok(()));
        assert_eq!(
            check(&now.to_string(), &signature, body, now + 10),
            Err(Refusal::Replayed)
        );
        let tampered = br#"{"from":"mallory","text":"hi"}"#;
        let fresh = sign(SECRET, now + 1, body);
        assert_eq!(
            check(&(now + 1).to_string(), &fresh, tampered, now),
            Err(Refusal::BadSignature)
        );
        // The timestamp is signed too: moving it breaks the signature.
        assert_eq!(
            check(&(now + 2).to_string(), &fresh, body, now),
            Err(Refusal::BadSignature)
        );
        let old = sign(SECRET, now - 301, body);
        assert_eq!(
            check(&(now - 301).to_string(), &old, body, now),
            Err(Refusal::Stale(301, 300))
        );
        assert_eq!(
            verify(SECRET, None, Some(&fresh), body, now, 300, &guard),
            Err(Refusal::Unsigned)
        );
        assert_eq!(check("soon", &fresh, body, now), Err(Refusal::BadTimestamp));
        let other = sign("another-secret-entirely!", now + 3, body);
        assert_eq!(
            check(&(now + 3).to_string(), &other, body, now),
            Err(Refusal::BadSignature)
        );
    }
}
