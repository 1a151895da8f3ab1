//! A tenant's credentials, opened for one turn: resolved only where a value is used
//! (the environment of `exec`, the content `write_file` writes) and redacted
//! everywhere else. The redactor replaces every known value, and its base64 and URL
//! encodings, with `[REDACTED:KEY]`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::review::SecretString;

/// Values (and encodings) shorter than this are not redacted: replacing every
/// occurrence of a two-letter string would garble all output and hide nothing.
const MIN_REDACTED_CHARS: usize = 4;

/// Why a placeholder cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("there is no credential {0}; an operator adds it with POST /api/v1/credentials")]
    Unknown(String),
}

/// Environment variables holding credential values.
pub type SecretEnv = Vec<(String, String)>;

/// One credential, with the forms it may appear in.
struct Entry {
    value: SecretString,
    exposed: bool,
}

/// The credentials of one tenant, in memory for one turn.
#[derive(Default)]
pub struct Secrets {
    entries: BTreeMap<String, Entry>,
    /// Every value and encoding with what replaces it, longest first across keys, so
    /// a secret containing another is replaced whole. Built once, used per tool result.
    forms: Vec<(String, String)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// From `(key, value, exposed)` triples.
    pub fn new(credentials: impl IntoIterator<Item = (String, SecretString, bool)>) -> Self {
        let entries: BTreeMap<String, Entry> = credentials
            .into_iter()
            .map(|(key, value, exposed)| (key, Entry { value, exposed }))
            .collect();
        let mut forms: Vec<(String, String)> = entries
            .iter()
            .flat_map(|(key, entry)| {
                let replacement = format!("[REDACTED:{key}]");
                forms(entry.value.expose_secret())
                    .into_iter()
                    .map(move |form| (form, replacement.clone()))
            })
            .collect();
        forms.sort_by_key(|(form, _)| std::cmp::Reverse(form.len()));
        Self { entries, forms }
    }

    /// The value stored under `key`, for the one place that uses it.
    pub fn value(&self, key: &str) -> Option<&SecretString> {
        self.entries.get(key).map(|e| &e.value)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `text` with every known value and encoding replaced by `[REDACTED:KEY]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (form, replacement) in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), replacement);
            }
        }
        out
    }

    /// Replaces every `${credentials.KEY}` in `text` with the value, for content that is
    /// written where it is used (`write_file`). Returns the keys it used.
    pub fn resolve(&self, text: &str) -> Result<(String, Vec<String>), SecretsError> {
        let mut used = Vec::new();
        let resolved = replace_placeholders(text, |key| {
            let entry = self
                .entries
                .get(key)
                .ok_or_else(|| SecretsError::Unknown(key.to_owned()))?;
            used.push(key.to_owned());
            Ok(entry.value.expose_secret().to_owned())
        })?;
        Ok((resolved, used))
    }

    /// What a shell command runs with: every placeholder becomes a reference to an
    /// environment variable named after the key (`${credentials.KEY}` → `${KEY}`), so the
    /// value never appears in the command line (nor in `ps`). The environment holds the
    /// exposed credentials and the ones the command names. Returns the rewritten
    /// command and its environment.
    pub fn for_command(&self, command: &str) -> Result<(String, SecretEnv), SecretsError> {
        let mut named = Vec::new();
        let rewritten = replace_placeholders(command, |key| {
            if !self.entries.contains_key(key) {
                return Err(SecretsError::Unknown(key.to_owned()));
            }
            named.push(key.to_owned());
            Ok(format!("${{{key}}}"))
        })?;
        let env = self
            .entries
            .iter()
            .filter(|(key, entry)| entry.exposed || named.contains(key))
            .map(|(key, entry)| (key.clone(), entry.value.expose_secret().to_owned()))
            .collect();
        Ok((rewritten, env))
    }
}

/// The credential keys `text` names with `${credentials.KEY}` placeholders.
pub fn placeholder_keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let _ = replace_placeholders(text, |key| {
        keys.push(key.to_owned());
        Ok(String::new())
    });
    keys.sort();
    keys.dedup();
    keys
}

/// Why a tenant's credentials could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenSecretsError {
    #[error("the credential store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("credential {key}: {source}")]
    Vault {
        key: String,
        source: super::VaultError,
    },
}

/// Opens every credential of `tenant` (provider keys included, for redaction).
pub async fn tenant_secrets<S>(
    store: &S,
    vault: &super::Vault,
    tenant: &crate::domain::TenantId,
) -> Result<Secrets, OpenSecretsError>
where
    S: crate::store::CredentialRepository + ?Sized,
{
    let rows = store.list_credentials(tenant).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let value = vault
            .open_sealed(&row.sealed)
            .map_err(|source| OpenSecretsError::Vault {
                key: row.key.clone(),
                source,
            })?;
        entries.push((row.key, value, row.exposed));
    }
    Ok(Secrets::new(entries))
}

/// Whether `key` can name a credential: it doubles as an environment variable name.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 128
}

fn replace_placeholders(
    text: &str,
    mut replace: impl FnMut(&str) -> Result<String, SecretsError>,
) -> Result<String, SecretsError> {
    const OPEN: &str = "${credentials.";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            break;
        };
        let key = &after[..end];
        out.push_str(&rest[..start]);
        if valid_key(key) {
            out.push_str(&replace(key)?);
        } else {
            out.push_str(&rest[start..start + OPEN.len() + end + 1]);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value and the encodings it is commonly seen in, longest first.
pub(super) fn forms(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut forms = vec![
        value.to_owned(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        percent_encode(bytes, false),
        percent_encode(bytes, true),
    ];
    forms.retain(|f| f.chars().count() >= MIN_REDACTED_CHARS);
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

fn percent_encode(bytes: &[u8], lower: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::new([
            (
                "API_TOKEN".to_owned(),
                SecretString::new("s3cr3t/v@lue+1"),
                false,
            ),
            (
                "DB_PASS".to_owned(),
                SecretString::new("hunter2hunter2"),
                true,
            ),
            ("PIN".to_owned(), SecretString::new("42"), false),
        ])
    }

    #[test]
    fn values_and_their_encodings_are_redacted() {
        let s = secrets();
        for shown in [
            "s3cr3t/v@lue+1".to_owned(),
            STANDARD.encode("s3cr3t/v@lue+1"),
            URL_SAFE_NO_PAD.encode("s3cr3t/v@lue+1"),
            "s3cr3t%2Fv%40lue%2B1".to_owned(),
            "s3cr3t%2fv%40lue%2b1".to_owned(),
        ] {
            let text = format!("token={shown}&x=1");
            assert_eq!(s.redact(&text), "token=[REDACTED:API_TOKEN]&x=1", "{shown}");
        }
        assert_eq!(s.redact("hunter2hunter2"), "[REDACTED:DB_PASS]");
        assert_eq!(s.redact("answer 42"), "answer 42", "too short to redact");
    }

    #[test]
    fn placeholders_resolve_only_where_used() {
        let s = secrets();
        let (text, used) = s.resolve("token: ${credentials.API_TOKEN}\n").unwrap();
        assert_eq!(text, "token: s3cr3t/v@lue+1\n");
        assert_eq!(used, ["API_TOKEN"]);
        assert_eq!(
            s.resolve("${credentials.NOPE}").unwrap_err(),
            SecretsError::Unknown("NOPE".into())
        );
        assert_eq!(
            s.resolve("${credentials.not valid}").unwrap().0,
            "${credentials.not valid}"
        );

        let (command, env) = s
            .for_command("curl -H \"Authorization: ${credentials.API_TOKEN}\" x")
            .unwrap();
        assert_eq!(command, "curl -H \"Authorization: ${API_TOKEN}\" x");
        assert!(!command.contains("s3cr3t"));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["API_TOKEN", "DB_PASS"],
            "named plus exposed, not PIN"
        );
    }

    #[test]
    fn keys_double_as_environment_names() {
        assert!(valid_key("GITHUB_TOKEN") && valid_key("_x1"));
        assert!(!valid_key("1X") && !valid_key("A-B") && !valid_key("") && !valid_key("A B"));
    }
}
