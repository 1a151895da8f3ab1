//! Provider API keys from the vault: a provider without an `apiKey` in config takes
//! the one stored for it (`/api/v1/credentials/providers`), and `${credentials.KEY}` in
//! an `apiKey` or extra header resolves to the default tenant's credential. Both are
//! resolved once, when the node starts, into the HTTP headers where they are used.

use super::{Secrets, SecretsError};
use crate::config::Config;

/// The vault key a provider's API key is stored under. The dot keeps it apart from
/// user credentials (whose keys are environment names) and out of placeholders.
pub fn provider_key(provider: &str) -> String {
    format!("provider.{provider}")
}

/// Fills provider keys and headers from `secrets` (the default tenant's credentials).
pub fn resolve_providers(config: &mut Config, secrets: &Secrets) -> Result<(), SecretsError> {
    for (name, provider) in &mut config.providers {
        match &provider.api_key {
            Some(key) => provider.api_key = Some(secrets.resolve(key)?.0),
            None => {
                provider.api_key = secrets
                    .value(&provider_key(name))
                    .map(|v| v.expose_secret().to_owned());
            }
        }
        for value in provider.extra_headers.values_mut() {
            *value = secrets.resolve(value)?.0;
        }
    }
    Ok(())
}
