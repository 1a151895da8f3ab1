//! Model → provider resolution (placeholder).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{CallLimits, Provider};
use crate::config::Config;

/// Why no provider could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no provider is configured for model {model:?}: {hint}")]
    NoProvider { model: String, hint: String },
    #[error("provider {0:?} is not configured")]
    UnknownProvider(String),
    #[error("provider {name:?} is misconfigured: {reason}")]
    Invalid { name: String, reason: String },
}

/// The configured providers.
#[derive(Debug, Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
}

impl ProviderRegistry {
    /// Builds every provider in `config.providers` (plus `OPENAI_API_KEY`/`OPENAI_BASE_URL`
    /// and `ANTHROPIC_API_KEY` from the environment when not configured).
    pub fn from_config(_config: &Config, _limits: CallLimits) -> Result<Self, ResolveError> {
        Ok(Self::default())
    }

    /// Picks the provider for `model` (explicit name, then model prefix, then the one
    /// provider with a key) and returns it with the model id to send.
    pub fn resolve(
        &self,
        model: &str,
        explicit: Option<&str>,
    ) -> Result<(Arc<dyn Provider>, String), ResolveError> {
        let _ = (&self.providers, explicit);
        Err(ResolveError::NoProvider {
            model: model.to_owned(),
            hint: "not implemented".into(),
        })
    }
}
