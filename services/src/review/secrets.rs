//! Password fields of a form answer go to the credential store, never to the agent.
//!
//! The raw values this module separates must be handed straight to the credential
//! store and dropped. They must never be written to session history, logs, traces or
//! the audit trail, and never returned to the model: everything downstream of a
//! review sees only the `${credentials.KEY}` placeholder that replaces them, which
//! tools resolve at execution time.

use std::fmt;

use serde_json::{Map, Value};

use super::payload::{FieldType, FormPayload};

/// A secret a reviewer typed. `Debug` and `Display` print `[REDACTED]`, and there is
/// deliberately no `Serialize`, so it cannot reach a log line or a JSON body by
/// accident; `expose_secret` is the one, greppable way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the credential store only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The credential key a form field's secret is stored under: the field name in
/// UPPER_SNAKE_CASE (`apiKey` and `api-key` both give `API_KEY`).
pub fn credential_key(field_name: &str) -> String {
    let mut key = String::with_capacity(field_name.len() + 4);
    let mut previous: Option<char> = None;
    for c in field_name.chars() {
        if c.is_ascii_alphanumeric() {
            // A camelCase hump starts a new word.
            let hump = c.is_ascii_uppercase()
                && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            if hump && !key.ends_with('_') {
                key.push('_');
            }
            key.push(c.to_ascii_uppercase());
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
        previous = Some(c);
    }
    while key.ends_with('_') {
        key.pop();
    }
    key
}

/// What replaces a secret in the response the agent sees.
pub fn credential_placeholder(key: &str) -> String {
    format!("${{credentials.{key}}}")
}

/// Splits a form answer into what the agent may see and the secrets: every password
/// field's value is replaced by `${credentials.<KEY>}` and returned beside it, keyed
/// by [`credential_key`]. Fields left empty produce no secret. The raw values go
/// straight to the credential store and are dropped: never into session history,
/// logs, traces or the audit trail.
pub fn split_secrets(
    form: &FormPayload,
    response: Map<String, Value>,
) -> (Value, Vec<(String, SecretString)>) {
    let (redacted, secrets) = split_form_secrets(form, response);
    (Value::Object(redacted), secrets)
}

pub(super) fn split_form_secrets(
    form: &FormPayload,
    mut response: Map<String, Value>,
) -> (Map<String, Value>, Vec<(String, SecretString)>) {
    let mut secrets = Vec::new();
    for field in form
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::Password)
    {
        let Some(value) = response.get_mut(&field.name) else {
            continue;
        };
        let raw = match value.take() {
            Value::Null => continue,
            Value::String(s) => s,
            // Validation only lets strings through; anything else is still treated
            // as secret rather than echoed.
            other => other.to_string(),
        };
        let key = credential_key(&field.name);
        *value = Value::String(credential_placeholder(&key));
        secrets.push((key, SecretString(raw)));
    }
    (response, secrets)
}
