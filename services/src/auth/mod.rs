//! Who is calling: bearer JWTs with `sub`, `tenant`, `roles`, `exp`, `iss` and `aud`,
//! signed with HS256 or with configured RS256/EdDSA public keys. `alg: none` and any
//! algorithm without a configured key are refused; every refusal names its reason and
//! never repeats the token.

mod oidc;
#[cfg(test)]
mod tests;
mod verify;

use serde::{Deserialize, Serialize};

use crate::domain::TenantId;

pub use oidc::{Oidc, OidcError, SignIn};
pub use verify::Verifier;

/// What a token lets its holder do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Reviewer,
    Client,
}

impl Role {
    pub fn parse(name: &str) -> Option<Role> {
        Some(match name {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            "reviewer" => Role::Reviewer,
            "client" => Role::Client,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Reviewer => "reviewer",
            Role::Client => "client",
        }
    }
}

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub roles: Vec<Role>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    pub iss: String,
    pub aud: String,
    /// The token's id, by which it can be revoked (`facio tokens create` always sets
    /// one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub tenant: TenantId,
    pub roles: Vec<Role>,
    /// The token's `jti`, when it has one (checked against revocations).
    pub jti: Option<String>,
}

impl Identity {
    /// Whether the caller holds one of `roles` (admins hold every role).
    pub fn may(&self, roles: &[Role]) -> bool {
        self.roles
            .iter()
            .any(|r| *r == Role::Admin || roles.contains(r))
    }
}

/// Why a token was refused (HTTP 401), or why auth cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("tokens signed with alg {0:?} are not accepted")]
    Algorithm(String),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's issuer is not the configured one")]
    Issuer,
    #[error("the token's audience is not the configured one")]
    Audience,
    #[error("the token's claims are invalid: {0}")]
    Claims(String),
    #[error("no key is configured to verify tokens (auth.hs256Secret or auth.publicKeysFile)")]
    NoKeys,
    #[error("the identity provider's keys: {0}")]
    Keys(String),
    #[error("{0}")]
    UnknownKey(String),
    #[error("auth configuration: {0}")]
    Config(String),
}

/// Signs an HS256 token (for `facio tokens create`).
pub fn issue_hs256(claims: &Claims, secret: &str) -> Result<String, AuthError> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &key,
    )
    .map_err(|e| AuthError::Config(e.to_string()))
}

/// Compares without stopping at the first difference, so timing does not reveal how
/// much of a guessed token was right.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
