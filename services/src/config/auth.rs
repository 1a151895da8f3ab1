//! `auth`: how bearer tokens of the management API are verified.

use serde::{Deserialize, Serialize};

/// `auth` area. Tokens are JWTs signed with HS256 (`hs256Secret`) or with a key
/// listed in `publicKeysFile` (RS256 or EdDSA); either or both may be set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Required `iss` claim. Default `facio`.
    pub issuer: String,
    /// Required `aud` claim. Default `facio`.
    pub audience: String,
    /// HS256 secret (at least 32 characters). Use `${FACIO_JWT_SECRET}`.
    pub hs256_secret: Option<String>,
    /// PEM file with RS256 or Ed25519 public keys (one or more PEM blocks).
    pub public_keys_file: Option<std::path::PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "facio".to_owned(),
            audience: "facio".to_owned(),
            hs256_secret: None,
            public_keys_file: None,
        }
    }
}
