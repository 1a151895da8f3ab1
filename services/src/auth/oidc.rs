//! Signing reviewers in with OpenID Connect: the authorization code flow with PKCE
//! (S256) and a nonce, against the provider's discovery document, and verifying the
//! ID tokens it signs against its JWKS (fetched once, refetched when a token names a
//! key it does not hold). The verified `sub` is who decides; roles and tenant come
//! from the configured claims.

use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::{AuthError, Identity, Role};
use crate::config::OidcConfig;
use crate::domain::TenantId;

/// How long a fetched discovery document is used before it is read again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Shortest time between two JWKS fetches forced by an unknown key id, so tokens
/// naming made-up keys cannot make the node hammer the provider.
const JWKS_REFETCH_GAP: Duration = Duration::from_secs(10);
/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_S: u64 = 30;
/// Signing algorithms accepted from a provider (never HS*, never none).
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a sign-in could not go on (the provider could not be reached, answered
/// something unusable, or refused the code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider's {what} is not usable: {reason}")]
    Document { what: &'static str, reason: String },
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider's ID token was refused: {0}")]
    Token(#[from] AuthError),
}

/// The parts of the discovery document the flow uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

struct Fetched<T> {
    value: T,
    at: Instant,
}

/// A sign-in begun: send the browser to `url`; keep `state`, `verifier` and `nonce`
/// with the browser (never elsewhere) until it comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub url: String,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

/// The configured provider.
pub struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    discovery: Mutex<Option<Fetched<Discovery>>>,
    keys: Mutex<Option<Fetched<JwkSet>>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.config.issuer)
            .field("client_id", &self.config.client_id)
            .finish()
    }
}

/// 32 random bytes, base64url: state, nonce and PKCE verifier (43 characters, within
/// RFC 7636's 43–128).
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Oidc, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Config(format!("auth.oidc: {e}")))?;
        Ok(Oidc {
            config,
            http,
            discovery: Mutex::new(None),
            keys: Mutex::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The configured redirect URL, if one is set (else the caller derives it).
    pub fn redirect_url(&self) -> Option<&str> {
        self.config.redirect_url.as_deref()
    }

    /// Whether `token` claims to come from this provider (read without verifying, to
    /// pick the verifier; verification follows).
    pub fn issued(&self, token: &str) -> bool {
        super::verify::unverified_claims(token)
            .is_some_and(|claims| claims["iss"].as_str() == Some(self.config.issuer.as_str()))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &'static str,
    ) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(format!("{what}: {}", e.without_url())))?;
        if !response.status().is_success() {
            return Err(OidcError::Document {
                what,
                reason: format!("HTTP {}", response.status().as_u16()),
            });
        }
        response.json().await.map_err(|e| OidcError::Document {
            what,
            reason: e.without_url().to_string(),
        })
    }

    async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut cached = self.discovery.lock().await;
        if let Some(found) = cached.as_ref()
            && found.at.elapsed() < DISCOVERY_TTL
        {
            return Ok(found.value.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let document: Discovery = self.get_json(&url, "discovery document").await?;
        // OpenID Connect Discovery 1.0, section 4.3: the document's issuer is exactly
        // the one configured, or tokens could be minted by someone else.
        if document.issuer != self.config.issuer {
            return Err(OidcError::Document {
                what: "discovery document",
                reason: format!(
                    "it names issuer {:?}, not the configured {:?}",
                    document.issuer, self.config.issuer
                ),
            });
        }
        if let Some(methods) = &document.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(OidcError::Document {
                what: "discovery document",
                reason: "it does not support PKCE with S256".into(),
            });
        }
        *cached = Some(Fetched {
            value: document.clone(),
            at: Instant::now(),
        });
        Ok(document)
    }

    /// Begins a sign-in that returns to `redirect_uri`.
    pub async fn begin(&self, redirect_uri: &str) -> Result<SignIn, OidcError> {
        let discovery = self.discovery().await?;
        let state = random_token();
        let verifier = random_token();
        let nonce = random_token();
        let mut url = reqwest::Url::parse(&discovery.authorization_endpoint).map_err(|e| {
            OidcError::Document {
                what: "discovery document",
                reason: format!("authorization_endpoint: {e}"),
            }
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(SignIn {
            url: url.into(),
            state,
            verifier,
            nonce,
        })
    }

    /// Redeems the authorization `code` for an ID token and verifies it (with the
    /// sign-in's `nonce`); returns the token and who it names.
    pub async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<(String, Identity), OidcError> {
        let discovery = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self.http.post(&discovery.token_endpoint);
        match &self.config.client_secret {
            // client_secret_basic, the default method (RFC 6749 2.3.1: both parts
            // form-encoded before they are joined).
            Some(secret) => {
                request = request.basic_auth(
                    form_encode(&self.config.client_id),
                    Some(form_encode(secret)),
                );
            }
            None => form.push(("client_id", &self.config.client_id)),
        }
        let response =
            request.form(&form).send().await.map_err(|e| {
                OidcError::Unreachable(format!("token endpoint: {}", e.without_url()))
            })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| OidcError::Document {
            what: "token response",
            reason: e.without_url().to_string(),
        })?;
        if !status.is_success() {
            let error = body["error"].as_str().unwrap_or("error");
            let described = body["error_description"]
                .as_str()
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(OidcError::Refused(format!("{error}{described}")));
        }
        let token = body["id_token"]
            .as_str()
            .ok_or_else(|| OidcError::Document {
                what: "token response",
                reason: "it has no id_token".into(),
            })?
            .to_owned();
        let identity = self.verify(&token, Some(nonce)).await?;
        Ok((token, identity))
    }

    /// The provider's key for a token with this `kid` and `alg`.
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let discovery = self
            .discovery()
            .await
            .map_err(|e| AuthError::Keys(e.to_string()))?;
        let mut keys = self.keys.lock().await;
        for attempt in 0..2 {
            let stale = keys
                .as_ref()
                .is_none_or(|k| attempt == 1 && k.at.elapsed() >= JWKS_REFETCH_GAP);
            if stale {
                let set: JwkSet = self
                    .get_json(&discovery.jwks_uri, "JWKS")
                    .await
                    .map_err(|e| AuthError::Keys(e.to_string()))?;
                *keys = Some(Fetched {
                    value: set,
                    at: Instant::now(),
                });
            }
            if let Some(found) = keys.as_ref().and_then(|k| pick(&k.value, kid, alg)) {
                return DecodingKey::from_jwk(found).map_err(|e| {
                    AuthError::Keys(format!("the provider's key is not usable: {e}"))
                });
            }
        }
        Err(AuthError::UnknownKey(match kid {
            Some(kid) => format!("the identity provider holds no key {kid:?}"),
            None => "the identity provider holds no key for the token".to_owned(),
        }))
    }

    /// Verifies an ID token of this provider: signature by a key of its JWKS, `iss`,
    /// `aud` (and `azp` when there are several audiences), `exp`, the nonce when one
    /// is expected; then maps its claims to a Facio identity.
    pub async fn verify(&self, token: &str, nonce: Option<&str>) -> Result<Identity, AuthError> {
        let alg_name = super::verify::header_alg(token)?;
        if !ALGORITHMS.iter().any(|a| format!("{a:?}") == alg_name) {
            return Err(AuthError::Algorithm(alg_name));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key = self.key(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_S;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| super::verify::refusal(e, &alg_name))?
            .claims;
        if claims["aud"].as_array().is_some_and(|a| a.len() > 1)
            && claims["azp"].as_str() != Some(self.config.client_id.as_str())
        {
            return Err(AuthError::Audience);
        }
        if let Some(expected) = nonce
            && !claims["nonce"]
                .as_str()
                .is_some_and(|n| super::same_secret(n.as_bytes(), expected.as_bytes()))
        {
            return Err(AuthError::Claims(
                "the nonce is not the one this sign-in sent".into(),
            ));
        }
        self.identity(&claims)
    }

    fn identity(&self, claims: &Value) -> Result<Identity, AuthError> {
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Claims("sub is missing".into()))?
            .to_owned();
        let roles_claim = &self.config.roles_claim;
        let names: Vec<&str> = match claim(claims, roles_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(text)) => text.split([' ', ',']).filter(|s| !s.is_empty()).collect(),
            _ => Vec::new(),
        };
        let mut roles: Vec<Role> = names.into_iter().filter_map(Role::parse).collect();
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        if roles.is_empty() {
            return Err(AuthError::Claims(format!(
                "the claim {roles_claim:?} grants no Facio role (admin, operator, reviewer or client)"
            )));
        }
        let tenant_claim = &self.config.tenant_claim;
        let tenant = claim(claims, tenant_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AuthError::Claims(format!(
                    "the claim {tenant_claim:?} naming the tenant is missing"
                ))
            })?;
        let tenant = TenantId::new(tenant.to_owned())
            .map_err(|e| AuthError::Claims(format!("{tenant_claim}: {e}")))?;
        Ok(Identity {
            subject,
            tenant,
            roles,
            jti: None,
        })
    }
}

/// The claim at a dotted path (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(direct) = claims.get(path) {
        return Some(direct);
    }
    path.split('.')
        .try_fold(claims, |value, part| value.get(part))
}

/// The key of `set` a token with `kid` and `alg` is signed with: the one with that id,
/// or, when the token names none, the only key for the algorithm.
fn pick<'a>(set: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    let fits = |jwk: &&Jwk| {
        jwk.common
            .key_algorithm
            .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
            && jwk
                .common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature)
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(fits)
            .find(|jwk| jwk.common.key_id.as_deref() == Some(kid)),
        None => {
            let mut candidates = set.keys.iter().filter(fits);
            let first = candidates.next();
            candidates.next().is_none().then_some(first).flatten()
        }
    }
}

/// `application/x-www-form-urlencoded` of one value (the HTML form encoding).
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_credentials_are_form_encoded_before_basic_auth() {
        assert_eq!(super::form_encode("a b+c/d=é"), "a+b%2Bc%2Fd%3D%C3%A9");
        assert_eq!(super::form_encode("inbox-1.x_y*"), "inbox-1.x_y*");
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            super::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn claims_are_found_by_name_or_dotted_path() {
        let claims = serde_json::json!({"roles": ["reviewer"], "realm_access": {"roles": ["admin"]}, "a.b": 1});
        assert_eq!(
            super::claim(&claims, "roles"),
            Some(&serde_json::json!(["reviewer"]))
        );
        assert_eq!(
            super::claim(&claims, "realm_access.roles"),
            Some(&serde_json::json!(["admin"]))
        );
        assert_eq!(super::claim(&claims, "a.b"), Some(&serde_json::json!(1)));
        assert_eq!(super::claim(&claims, "realm_access.groups"), None);
    }
}
