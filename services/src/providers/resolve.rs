//! Model → provider resolution: which configured backend answers a given model id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{AnthropicProvider, CallLimits, OpenAiProvider, Provider};
use crate::config::{Config, ProviderConfig};

/// Why no provider could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no provider is configured for model {model:?}: {hint}")]
    NoProvider { model: String, hint: String },
    #[error("provider {0:?} is not configured")]
    UnknownProvider(String),
    #[error("provider {name:?} is misconfigured: {reason}")]
    Invalid { name: String, reason: String },
    #[error("provider {name:?} has no API key: {hint}")]
    MissingKey { name: String, hint: String },
}

/// The configured providers.
#[derive(Debug, Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Providers given a key or an address of their own: the candidates when neither
    /// the request nor the model id names one.
    reachable: BTreeSet<String>,
    /// Providers pointing at a hosted service that needs a key they lack, with how to
    /// give one: calling them could only fail (after retries), so they are refused.
    keyless: BTreeMap<String, String>,
}

/// Where well-known OpenAI-compatible services live, so configuring a key is enough.
fn default_base(name: &str) -> Option<&'static str> {
    match name {
        "openai" => Some("https://api.openai.com/v1"),
        "openrouter" => Some("https://openrouter.ai/api/v1"),
        "deepseek" => Some("https://api.deepseek.com/v1"),
        "groq" => Some("https://api.groq.com/openai/v1"),
        _ => None,
    }
}

/// Hosted services that answer only with a key (local servers need none).
const KEYED_HOSTS: [&str; 5] = [
    "api.openai.com",
    "openrouter.ai",
    "api.deepseek.com",
    "api.groq.com",
    "api.anthropic.com",
];

/// How to give provider `name` its key, when it lacks one its service needs.
fn missing_key_hint(name: &str, cfg: &ProviderConfig) -> Option<String> {
    if cfg.api_key.as_deref().is_some_and(|k| !k.trim().is_empty()) {
        return None;
    }
    let anthropic = name == "anthropic" || cfg.kind.as_deref() == Some("anthropic");
    let base = cfg
        .api_base
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .or(default_base(name))
        .or(anthropic.then_some("https://api.anthropic.com"))?;
    let host = reqwest::Url::parse(base)
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    if !KEYED_HOSTS.contains(&host.as_str()) {
        return None;
    }
    let variable = match name {
        "openai" => Some("OPENAI_API_KEY"),
        "anthropic" => Some("ANTHROPIC_API_KEY"),
        _ => None,
    };
    Some(match variable {
        Some(var) => {
            format!("{host} needs one: set {var}, or providers.{name}.apiKey in config.json")
        }
        None => format!("{host} needs one: set providers.{name}.apiKey in config.json"),
    })
}

/// The provider a bare model id belongs to by its family name.
fn family_provider(model: &str) -> Option<&'static str> {
    let model = model.to_ascii_lowercase();
    if model.starts_with("claude-") {
        Some("anthropic")
    } else if ["gpt-", "o1", "o3", "o4"]
        .iter()
        .any(|family| model.starts_with(family))
    {
        Some("openai")
    } else {
        None
    }
}

const SETUP_HINT: &str = "set OPENAI_API_KEY (optionally with OPENAI_BASE_URL) or \
    ANTHROPIC_API_KEY, or add providers.<name>.apiKey / providers.<name>.apiBase to config.json";

impl ProviderRegistry {
    /// Builds every provider in `config.providers` (plus `OPENAI_API_KEY`/`OPENAI_BASE_URL`
    /// and `ANTHROPIC_API_KEY` from the environment when not configured).
    pub fn from_config(config: &Config, limits: CallLimits) -> Result<Self, ResolveError> {
        Self::from_sources(config, limits, |key| std::env::var(key).ok())
    }

    /// [`Self::from_config`] with the environment read through `env`.
    pub(super) fn from_sources(
        config: &Config,
        limits: CallLimits,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ResolveError> {
        let env = |key: &str| env(key).filter(|value| !value.trim().is_empty());
        let mut configs = config.providers.clone();
        if !configs.contains_key("openai") {
            let api_key = env("OPENAI_API_KEY");
            let api_base = env("OPENAI_BASE_URL");
            if api_key.is_some() || api_base.is_some() {
                let cfg = ProviderConfig {
                    api_key,
                    api_base,
                    ..ProviderConfig::default()
                };
                configs.insert("openai".to_owned(), cfg);
            }
        }
        if !configs.contains_key("anthropic")
            && let Some(api_key) = env("ANTHROPIC_API_KEY")
        {
            let cfg = ProviderConfig {
                api_key: Some(api_key),
                ..ProviderConfig::default()
            };
            configs.insert("anthropic".to_owned(), cfg);
        }

        let mut registry = Self::default();
        for (name, cfg) in &configs {
            let provider = build(name, cfg, limits.clone())?;
            let has_own = |value: &Option<String>| {
                value
                    .as_deref()
                    .is_some_and(|value| !value.trim().is_empty())
            };
            if let Some(hint) = missing_key_hint(name, cfg) {
                registry.keyless.insert(name.clone(), hint);
            } else if has_own(&cfg.api_key) || has_own(&cfg.api_base) {
                registry.reachable.insert(name.clone());
            }
            registry.providers.insert(name.clone(), provider);
        }
        Ok(registry)
    }

    /// Adds (or replaces) provider `name`; it counts as reachable.
    pub fn with_provider(mut self, name: impl Into<String>, provider: Arc<dyn Provider>) -> Self {
        let name = name.into();
        self.reachable.insert(name.clone());
        self.providers.insert(name, provider);
        self
    }

    /// The configured provider names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    /// Picks the provider for `model` (explicit name, then model prefix, then model
    /// family, then the one provider with a key) and returns it with the model id to send.
    /// A provider that lacks the key its hosted service needs is refused, naming what
    /// to set, instead of being called.
    pub fn resolve(
        &self,
        model: &str,
        explicit: Option<&str>,
    ) -> Result<(Arc<dyn Provider>, String), ResolveError> {
        let (provider, model) = self.pick(model, explicit)?;
        if let Some(hint) = self.keyless.get(provider.name()) {
            return Err(ResolveError::MissingKey {
                name: provider.name().to_owned(),
                hint: hint.clone(),
            });
        }
        Ok((provider, model))
    }

    /// The providers that lack the key their service needs, with how to give one.
    pub fn missing_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keyless.iter().map(|(n, h)| (n.as_str(), h.as_str()))
    }

    fn pick(
        &self,
        model: &str,
        explicit: Option<&str>,
    ) -> Result<(Arc<dyn Provider>, String), ResolveError> {
        if model.trim().is_empty() {
            return Err(ResolveError::NoProvider {
                model: model.to_owned(),
                hint: "no model id was given: set agents.defaults.model".to_owned(),
            });
        }
        if let Some(name) = explicit.map(str::trim).filter(|name| !name.is_empty()) {
            let provider = self
                .providers
                .get(name)
                .ok_or_else(|| ResolveError::UnknownProvider(name.to_owned()))?;
            let model = model
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|rest| !rest.is_empty())
                .unwrap_or(model);
            return Ok((provider.clone(), model.to_owned()));
        }
        if let Some((prefix, rest)) = model.split_once('/')
            && !rest.is_empty()
            && let Some(provider) = self.providers.get(prefix)
        {
            return Ok((provider.clone(), rest.to_owned()));
        }
        if let Some(family) = family_provider(model)
            && let Some(provider) = self.providers.get(family)
        {
            return Ok((provider.clone(), model.to_owned()));
        }
        let reachable: Vec<&String> = self.reachable.iter().collect();
        match reachable.as_slice() {
            [only] => match self.providers.get(only.as_str()) {
                Some(provider) => Ok((provider.clone(), model.to_owned())),
                None => Err(self.no_provider(model)),
            },
            [] => match self.keyless.iter().collect::<Vec<_>>().as_slice() {
                [(name, hint)] => Err(ResolveError::MissingKey {
                    name: (*name).clone(),
                    hint: (*hint).clone(),
                }),
                _ => Err(self.no_provider(model)),
            },
            several @ [first, ..] => Err(ResolveError::NoProvider {
                model: model.to_owned(),
                hint: format!(
                    "several providers could serve it ({}); set agents.defaults.provider or \
                     prefix the model with a provider name, e.g. \"{first}/{model}\"",
                    several
                        .iter()
                        .map(|name| name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            }),
        }
    }

    fn no_provider(&self, model: &str) -> ResolveError {
        let hint = if self.providers.is_empty() {
            SETUP_HINT.to_owned()
        } else {
            format!(
                "the configured providers ({}) have no apiKey or apiBase and none matches the \
                 model by prefix or family; {SETUP_HINT}",
                self.names().join(", ")
            )
        };
        ResolveError::NoProvider {
            model: model.to_owned(),
            hint,
        }
    }
}

/// One provider from its config: `kind` decides the wire, else the name `anthropic`.
fn build(
    name: &str,
    cfg: &ProviderConfig,
    limits: CallLimits,
) -> Result<Arc<dyn Provider>, ResolveError> {
    let kind = cfg
        .kind
        .as_deref()
        .map(|kind| kind.trim().to_ascii_lowercase())
        .filter(|kind| !kind.is_empty())
        .unwrap_or_else(|| {
            if name == "anthropic" {
                "anthropic".to_owned()
            } else {
                "openai".to_owned()
            }
        });
    match kind.as_str() {
        "anthropic" => Ok(Arc::new(AnthropicProvider::new(name, cfg, limits)?)),
        "openai" => Ok(Arc::new(OpenAiProvider::new(
            name,
            cfg,
            default_base(name).unwrap_or_default(),
            limits,
        )?)),
        other => Err(ResolveError::Invalid {
            name: name.to_owned(),
            reason: format!(
                "providers.{name}.kind {other:?} is not known: use \"openai\" or \"anthropic\""
            ),
        }),
    }
}
