//! The credential vault's cryptography: AES-256-GCM under a 32-byte master key that
//! comes from `FACIO_MASTER_KEY` (64 hex characters) or, on a single machine, from
//! `<data dir>/master.key`, created with owner-only permissions on first use.

mod files;
mod known;
mod providers;
mod scope;
mod secrets;

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::review::SecretString;

pub use files::CredentialFile;
pub use known::{redact_known, remember};
pub use providers::{provider_key, resolve_providers};
pub use scope::{CREDENTIAL_TOOLS, CredentialScope, ScopeError};
pub use secrets::{
    OpenSecretsError, PlaceholderView, Secrets, SecretsError, placeholder_keys, tenant_secrets,
    valid_key,
};

/// What a sealed credential holds when it carries more than its value (a scope). The
/// NUL bytes keep it apart from any value (the API refuses values with NUL: they
/// cannot be environment variables). Sealed, so the scope cannot be changed without
/// the master key.
const ENVELOPE: &str = "\0facio-credential-v1\0";

/// A credential's value with its scope, as sealed.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    value: String,
    #[serde(default)]
    scope: Option<CredentialScope>,
}

/// Why the vault cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("FACIO_MASTER_KEY must be 64 hex characters (32 random bytes)")]
    BadKey,
    #[error("the master key is weak (repeated bytes); generate one with `openssl rand -hex 32`")]
    WeakKey,
    #[error("cannot read or create the master key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("a stored credential cannot be decrypted (wrong master key or corrupt row)")]
    Decrypt,
    #[error(
        "credentials are stored but there is no master key: set FACIO_MASTER_KEY or restore \
         {path}; a new key could not open them"
    )]
    MissingKey { path: String },
    #[error(
        "the master key does not open the stored credentials: is FACIO_MASTER_KEY (or \
         {path}) the key they were stored with?"
    )]
    WrongKey { path: String },
    #[error("encryption failed")]
    Encrypt,
}

/// An encrypted value: nonce and ciphertext, both hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

/// Encrypts and decrypts credential values.
#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
    /// Seals the audit log; derived from the master key.
    audit: crate::store::AuditKey,
    /// The data directory: the key file and the tenants' credential file indexes.
    data_dir: PathBuf,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([REDACTED])")
    }
}

impl Vault {
    /// The vault keyed by `FACIO_MASTER_KEY` when given, else by the key file in
    /// `data_dir`. A missing key file is created only when `stored` (any one stored
    /// credential) is `None`; otherwise the key must exist and open it, so a node never
    /// starts with a key that cannot read what is stored.
    pub fn open(
        env_key: Option<&str>,
        data_dir: &Path,
        stored: Option<&Sealed>,
    ) -> Result<Vault, VaultError> {
        let path = data_dir.join("master.key");
        let key = match env_key {
            Some(hex_key) => parse_key(hex_key)?,
            None if stored.is_some() && !path.exists() => {
                return Err(VaultError::MissingKey {
                    path: path.display().to_string(),
                });
            }
            None => key_file(&path)?,
        };
        if key.iter().all(|b| *b == key[0]) {
            return Err(VaultError::WeakKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| VaultError::BadKey)?;
        let vault = Vault {
            cipher,
            audit: crate::store::AuditKey::derive(&key),
            data_dir: data_dir.to_path_buf(),
        };
        if let Some(sealed) = stored
            && vault.open_sealed(sealed).is_err()
        {
            return Err(VaultError::WrongKey {
                path: path.display().to_string(),
            });
        }
        Ok(vault)
    }

    /// The key that seals the audit log (never the key that encrypts credentials).
    pub fn audit_key(&self) -> crate::store::AuditKey {
        self.audit.clone()
    }

    pub fn seal(&self, secret: &SecretString) -> Result<Sealed, VaultError> {
        self.seal_credential(secret, None)
    }

    /// Seals a value with its scope (none: usable in every tool).
    pub fn seal_credential(
        &self,
        secret: &SecretString,
        scope: Option<&CredentialScope>,
    ) -> Result<Sealed, VaultError> {
        remember(secret.expose_secret());
        let plain = match scope {
            None => SecretString::new(secret.expose_secret()),
            Some(scope) => {
                let envelope = serde_json::to_string(&Envelope {
                    value: secret.expose_secret().to_owned(),
                    scope: Some(scope.clone()),
                })
                .map_err(|_| VaultError::Encrypt)?;
                SecretString::new(format!("{ENVELOPE}{envelope}"))
            }
        };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plain.expose_secret().as_bytes())
            .map_err(|_| VaultError::Encrypt)?;
        Ok(Sealed {
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        })
    }

    pub fn open_sealed(&self, sealed: &Sealed) -> Result<SecretString, VaultError> {
        self.open_credential(sealed).map(|(value, _)| value)
    }

    /// A sealed credential's value and scope.
    pub fn open_credential(
        &self,
        sealed: &Sealed,
    ) -> Result<(SecretString, Option<CredentialScope>), VaultError> {
        let nonce = hex::decode(&sealed.nonce).map_err(|_| VaultError::Decrypt)?;
        let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| VaultError::Decrypt)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| VaultError::Decrypt)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), ciphertext.as_ref())
            .map_err(|_| VaultError::Decrypt)?;
        let plain = SecretString::new(String::from_utf8(plain).map_err(|_| VaultError::Decrypt)?);
        let (value, scope) = match plain.expose_secret().strip_prefix(ENVELOPE) {
            None => (plain, None),
            Some(envelope) => {
                let envelope: Envelope =
                    serde_json::from_str(envelope).map_err(|_| VaultError::Decrypt)?;
                (SecretString::new(envelope.value), envelope.scope)
            }
        };
        remember(value.expose_secret());
        Ok((value, scope))
    }

    /// Where `tenant`'s index of files written with credentials is kept: in the data
    /// directory, outside every workspace.
    pub fn credential_files_index(&self, tenant: &crate::domain::TenantId) -> PathBuf {
        self.data_dir
            .join("tenants")
            .join(tenant.as_str())
            .join("credential-files.json")
    }
}

fn parse_key(text: &str) -> Result<Vec<u8>, VaultError> {
    let key = hex::decode(text.trim()).map_err(|_| VaultError::BadKey)?;
    if key.len() != 32 {
        return Err(VaultError::BadKey);
    }
    remember(text.trim());
    Ok(key)
}

fn key_file(path: &Path) -> Result<Vec<u8>, VaultError> {
    let failed = |e: std::io::Error| VaultError::KeyFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key: [u8; 32] = Aes256Gcm::generate_key(&mut OsRng).into();
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(failed)?;
            }
            // create_new: two processes starting at once cannot both write a key.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(failed)?;
            let text = hex::encode(key);
            remember(&text);
            file.write_all(text.as_bytes()).map_err(failed)?;
            Ok(key.to_vec())
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(None, dir.path(), None).unwrap();
        let sealed = vault.seal(&SecretString::new("hunter2-value")).unwrap();
        assert!(!sealed.ciphertext.contains("hunter2"));
        assert_eq!(
            vault.open_sealed(&sealed).unwrap().expose_secret(),
            "hunter2-value"
        );
        let again = Vault::open(None, dir.path(), None).unwrap();
        assert_eq!(
            again.open_sealed(&sealed).unwrap().expose_secret(),
            "hunter2-value"
        );
        let other = Vault::open(
            Some(&"ab".repeat(32).replacen("ab", "cd", 1)),
            dir.path(),
            None,
        )
        .unwrap();
        assert!(matches!(
            other.open_sealed(&sealed),
            Err(VaultError::Decrypt)
        ));
        assert!(matches!(
            Vault::open(Some("short"), dir.path(), None),
            Err(VaultError::BadKey)
        ));
        assert!(matches!(
            Vault::open(Some(&"00".repeat(32)), dir.path(), None),
            Err(VaultError::WeakKey)
        ));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_scope_is_sealed_with_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(None, dir.path(), None).unwrap();
        let scope = CredentialScope {
            tools: Some(vec!["exec".into()]),
            commands: Some(vec!["psql *".into()]),
        };
        let sealed = vault
            .seal_credential(&SecretString::new("scoped-value-1"), Some(&scope))
            .unwrap();
        let (value, opened) = vault.open_credential(&sealed).unwrap();
        assert_eq!(value.expose_secret(), "scoped-value-1");
        assert_eq!(opened, Some(scope));
        assert_eq!(
            vault.open_sealed(&sealed).unwrap().expose_secret(),
            "scoped-value-1"
        );
        let plain = vault.seal(&SecretString::new("plain-value-1")).unwrap();
        assert_eq!(vault.open_credential(&plain).unwrap().1, None);
        assert!(
            vault
                .credential_files_index(&crate::domain::TenantId::default_tenant())
                .starts_with(dir.path().join("tenants"))
        );
    }

    #[test]
    fn a_node_with_stored_credentials_needs_the_key_that_sealed_them() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(None, dir.path(), None).unwrap();
        let sealed = vault.seal(&SecretString::new("stored-value")).unwrap();
        assert!(Vault::open(None, dir.path(), Some(&sealed)).is_ok());
        std::fs::remove_file(dir.path().join("master.key")).unwrap();
        let missing = Vault::open(None, dir.path(), Some(&sealed)).unwrap_err();
        assert!(
            matches!(missing, VaultError::MissingKey { .. }),
            "{missing}"
        );
        assert!(
            !dir.path().join("master.key").exists(),
            "no new key was made"
        );
        let wrong = Vault::open(
            Some(&format!("{}34", "12".repeat(31))),
            dir.path(),
            Some(&sealed),
        );
        assert!(matches!(wrong, Err(VaultError::WrongKey { .. })));
    }
}
