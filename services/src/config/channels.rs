//! `channels`: where reviews are delivered besides Facio's own inbox.

use serde::{Deserialize, Serialize};

/// `channels` area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ChannelsConfig {
    pub placet: PlacetConfig,
    /// Generic webhook channels, by name: signed messages in at
    /// `POST /hooks/<name>`, the agent's answers out to `outboundUrl`, signed the same way.
    pub webhooks: std::collections::BTreeMap<String, WebhookChannel>,
    /// Telegram bots, by name: messages in by `getUpdates` long polling, answers out
    /// as streamed drafts (`sendMessage`, then `editMessageText`), reviews as inline
    /// keyboards.
    pub telegram: std::collections::BTreeMap<String, TelegramChannel>,
}

/// `channels.telegram.<name>`: a Telegram bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramChannel {
    /// The bot's token from BotFather (use `${TELEGRAM_BOT_TOKEN}`).
    pub bot_token: String,
    /// The Bot API's base URL (default `https://api.telegram.org`).
    #[serde(default = "telegram_api")]
    pub api_base: String,
    /// The tenant its chats are turns of (default: the default tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Telegram users (numeric ids or usernames) whose messages become turns. Empty:
    /// nobody's.
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Telegram users (ids or usernames) whose button presses decide reviews. Empty:
    /// reviews are decided elsewhere (the inbox, the API), and no buttons are shown.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Seconds each `getUpdates` long poll waits (default 25).
    #[serde(default = "twenty_five")]
    pub poll_timeout_s: u64,
}

fn telegram_api() -> String {
    "https://api.telegram.org".to_owned()
}

fn twenty_five() -> u64 {
    25
}

impl TelegramChannel {
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.bot_token.trim().is_empty() || self.bot_token.contains(['/', ' ', '?', '#']) {
            return Some(("botToken", "must be a bot token (digits:letters)".into()));
        }
        match reqwest::Url::parse(&self.api_base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => return Some(("apiBase", "must be an http or https URL".into())),
        }
        if let Some(tenant) = &self.tenant
            && let Err(e) = crate::domain::TenantId::new(tenant.clone())
        {
            return Some(("tenant", e.to_string()));
        }
        if self.poll_timeout_s == 0 || self.poll_timeout_s > 50 {
            return Some(("pollTimeoutS", "must be between 1 and 50".into()));
        }
        None
    }

    /// Whether this is a channel of `tenant` (no `tenant`: the default tenant's).
    pub fn belongs_to(&self, tenant: &crate::domain::TenantId) -> bool {
        self.tenant
            .as_deref()
            .map_or(*tenant == crate::domain::TenantId::default_tenant(), |t| {
                t == tenant.as_str()
            })
    }

    /// Whether the Telegram user `id` (or `username`) is on `list`.
    pub fn lists(list: &[String], id: i64, username: Option<&str>) -> bool {
        list.iter().any(|entry| {
            let entry = entry.trim_start_matches('@');
            entry == id.to_string() || username.is_some_and(|u| u.eq_ignore_ascii_case(entry))
        })
    }
}

/// `channels.webhooks.<name>`: a channel any system can speak with HMAC-SHA256
/// signatures (`X-Facio-Timestamp`, `X-Facio-Signature: sha256=<hex of
/// HMAC(secret, "<timestamp>.<body>")>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookChannel {
    /// The shared secret (at least 16 characters; use `${VAR}`).
    pub secret: String,
    /// The tenant its messages are turns of (default: the default tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Senders (the message's `from`) whose messages become turns. Empty: nobody's.
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Where the agent's answers (and the `message` tool's messages) are POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_url: Option<String>,
    /// Attempts per outbound message before it becomes a dead letter (default 5).
    #[serde(default = "five")]
    pub max_attempts: u32,
    /// Milliseconds before the first retry, doubled per attempt (default 500).
    #[serde(default = "half_second")]
    pub retry_backoff_ms: u64,
    /// Seconds a signed message stays valid, either side of now (default 300).
    #[serde(default = "five_minutes")]
    pub replay_window_s: u64,
}

fn five() -> u32 {
    5
}

fn half_second() -> u64 {
    500
}

fn five_minutes() -> u64 {
    300
}

impl WebhookChannel {
    /// Whether this is a channel of `tenant` (no `tenant`: the default tenant's).
    pub fn belongs_to(&self, tenant: &crate::domain::TenantId) -> bool {
        self.tenant
            .as_deref()
            .map_or(*tenant == crate::domain::TenantId::default_tenant(), |t| {
                t == tenant.as_str()
            })
    }

    /// What is wrong with this channel, as `(field, problem)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let reference = !crate::vault::placeholder_keys(&self.secret).is_empty();
        if !reference && self.secret.chars().count() < 16 {
            return Some(("secret", "must be at least 16 characters".into()));
        }
        if let Some(url) = &self.outbound_url {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => return Some(("outboundUrl", "must be an http or https URL".into())),
            }
        }
        if let Some(tenant) = &self.tenant
            && let Err(e) = crate::domain::TenantId::new(tenant.clone())
        {
            return Some(("tenant", e.to_string()));
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Some(("maxAttempts", "must be between 1 and 20".into()));
        }
        if self.replay_window_s == 0 || self.replay_window_s > 86_400 {
            return Some(("replayWindowS", "must be between 1 and 86400".into()));
        }
        if self.retry_backoff_ms > 600_000 {
            return Some(("retryBackoffMs", "must be at most 600000".into()));
        }
        None
    }
}

/// `channels.placet`: a Placet review inbox. Delivery is on when `instanceUrl`,
/// `apiKey` and `channelId` are all set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PlacetConfig {
    /// Base URL of the Placet instance, e.g. `https://placet.example.com`.
    pub instance_url: Option<String>,
    /// Placet API key (`hp_...`), sent as `x-api-key`. Use `${PLACET_API_KEY}`.
    pub api_key: Option<String>,
    /// The Placet channel (agent) reviews are posted to.
    pub channel_id: Option<String>,
    /// This gateway's URL as Placet reaches it; registered with `setWebhook` so Placet
    /// can proxy its dashboard to the management API. Unset: not registered.
    pub management_url: Option<String>,
    /// Milliseconds of each long-poll for a decision (Placet allows up to 30000).
    pub wait_timeout_ms: u64,
}

impl Default for PlacetConfig {
    fn default() -> Self {
        Self {
            instance_url: None,
            api_key: None,
            channel_id: None,
            management_url: None,
            wait_timeout_ms: 30_000,
        }
    }
}

impl PlacetConfig {
    /// The three settings delivery needs, when all are present.
    pub fn delivery(&self) -> Option<(&str, &str, &str)> {
        Some((
            self.instance_url.as_deref()?,
            self.api_key.as_deref()?,
            self.channel_id.as_deref()?,
        ))
    }
}
