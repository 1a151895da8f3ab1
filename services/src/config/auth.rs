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
    /// Reviewers sign in to the inbox with OpenID Connect; their ID tokens are then
    /// accepted as bearer tokens and decisions record the verified subject.
    pub oidc: Option<OidcConfig>,
}

/// `auth.oidc`: an OpenID Connect provider the inbox signs reviewers in with
/// (authorization code flow with PKCE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; its discovery document is
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client registered for the inbox.
    pub client_id: String,
    /// The client's secret, for a confidential client (sent with HTTP Basic).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Claim holding the caller's Facio roles (a list or a space-separated string; a
    /// dotted path such as `realm_access.roles` reaches into objects). Default
    /// `roles`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim naming the caller's tenant. Default `tenant`.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Where the provider sends the browser back: this node's public
    /// `…/inbox/callback` (default: built from the request's `Host`).
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Scopes asked for. Default `openid profile`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

fn default_tenant_claim() -> String {
    "tenant".to_owned()
}

fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned(), "profile".to_owned()]
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "facio".to_owned(),
            audience: "facio".to_owned(),
            hs256_secret: None,
            public_keys_file: None,
            oidc: None,
        }
    }
}
