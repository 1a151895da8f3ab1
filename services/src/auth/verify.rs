//! Verifying tokens against the configured keys.

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{AuthError, Claims, Identity};
use crate::config::AuthConfig;
use crate::domain::TenantId;

/// Shortest HS256 secret accepted: shorter ones can be brute-forced offline.
const MIN_SECRET_CHARS: usize = 32;

/// Verifies bearer tokens.
#[derive(Clone)]
pub struct Verifier {
    hs256: Option<DecodingKey>,
    public: Vec<(Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.hs256.is_some())
            .field("public_keys", &self.public.len())
            .finish()
    }
}

impl Verifier {
    /// `None` when no key is configured (JWTs are then not accepted at all).
    pub fn from_config(config: &AuthConfig) -> Result<Option<Verifier>, AuthError> {
        let hs256 = match &config.hs256_secret {
            Some(secret) if secret.chars().count() < MIN_SECRET_CHARS => {
                return Err(AuthError::Config(format!(
                    "auth.hs256Secret must be at least {MIN_SECRET_CHARS} characters"
                )));
            }
            Some(secret) => Some(DecodingKey::from_secret(secret.as_bytes())),
            None => None,
        };
        let mut public = Vec::new();
        if let Some(path) = &config.public_keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AuthError::Config(format!("cannot read {}: {e}", path.display())))?;
            for block in pem_blocks(&text) {
                if let Ok(key) = DecodingKey::from_rsa_pem(block.as_bytes()) {
                    public.push((Algorithm::RS256, key));
                } else if let Ok(key) = DecodingKey::from_ed_pem(block.as_bytes()) {
                    public.push((Algorithm::EdDSA, key));
                } else {
                    return Err(AuthError::Config(format!(
                        "{} holds a key that is neither RSA nor Ed25519",
                        path.display()
                    )));
                }
            }
        }
        if hs256.is_none() && public.is_empty() {
            return Ok(None);
        }
        Ok(Some(Verifier {
            hs256,
            public,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        }))
    }

    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let alg = header_alg(token)?;
        let keys: Vec<(Algorithm, &DecodingKey)> = match alg.as_str() {
            "HS256" => self.hs256.iter().map(|k| (Algorithm::HS256, k)).collect(),
            "RS256" | "EdDSA" => self
                .public
                .iter()
                .filter(|(a, _)| format!("{a:?}") == alg)
                .map(|(a, k)| (*a, k))
                .collect(),
            _ => Vec::new(),
        };
        if keys.is_empty() {
            return Err(AuthError::Algorithm(alg));
        }
        let mut last = AuthError::Signature;
        for (algorithm, key) in keys {
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.validate_nbf = true;
            validation.leeway = 5;
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return identity(data.claims),
                Err(e) => match refusal(e, &alg) {
                    AuthError::Signature => last = AuthError::Signature,
                    AuthError::Algorithm(a) => last = AuthError::Algorithm(a),
                    AuthError::Malformed => last = AuthError::Malformed,
                    refused => return Err(refused),
                },
            }
        }
        Err(last)
    }
}

/// What a failed decode means to the caller. Signature, algorithm and format
/// failures may be another key's to pass; the others are final.
pub(super) fn refusal(e: jsonwebtoken::errors::Error, alg: &str) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::InvalidAlgorithm => AuthError::Algorithm(alg.to_owned()),
        ErrorKind::MissingRequiredClaim(claim) => AuthError::Claims(format!("{claim} is missing")),
        ErrorKind::Json(_) => {
            AuthError::Claims("sub, tenant, roles, exp, iss and aud are required".into())
        }
        _ => AuthError::Malformed,
    }
}

/// The claims of `token` read without verifying anything (to choose a verifier).
pub(super) fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn identity(claims: Claims) -> Result<Identity, AuthError> {
    let tenant =
        TenantId::new(claims.tenant).map_err(|e| AuthError::Claims(format!("tenant: {e}")))?;
    if claims.roles.is_empty() {
        return Err(AuthError::Claims("roles must not be empty".into()));
    }
    Ok(Identity {
        subject: claims.sub,
        tenant,
        roles: claims.roles,
        jti: claims.jti,
    })
}

/// The header's `alg`, read before any verification so `none` and unknown algorithms
/// get a clear answer.
pub(super) fn header_alg(token: &str) -> Result<String, AuthError> {
    let header = token.split('.').next().ok_or(AuthError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    value["alg"]
        .as_str()
        .map(str::to_owned)
        .ok_or(AuthError::Malformed)
}

fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}
