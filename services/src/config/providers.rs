//! `providers.<name>`: how to reach a model backend.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `providers`: provider name → settings. Names are free (`openai`, `anthropic`,
/// `ollama`, `vllm`, ...); `anthropic` (or `kind: "anthropic"`) uses the native
/// Messages API, every other provider the OpenAI-compatible wire.
pub type ProvidersConfig = BTreeMap<String, ProviderConfig>;

/// One provider.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// API key (use `${ENV_VAR}`; never commit it).
    pub api_key: Option<String>,
    /// Base URL, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub api_base: Option<String>,
    /// Extra HTTP headers sent with every request.
    pub extra_headers: BTreeMap<String, String>,
    /// Wire protocol: `openai` (default) or `anthropic`.
    pub kind: Option<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("api_base", &self.api_base)
            .field(
                "extra_headers",
                &self.extra_headers.keys().collect::<Vec<_>>(),
            )
            .field("kind", &self.kind)
            .finish()
    }
}
