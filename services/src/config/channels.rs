//! `channels`: where reviews are delivered besides Facio's own inbox.

use serde::{Deserialize, Serialize};

/// `channels` area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ChannelsConfig {
    pub placet: PlacetConfig,
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
