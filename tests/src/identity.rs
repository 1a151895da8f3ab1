//! An OpenID Connect identity provider stand-in built from the specifications' wire
//! shapes (OpenID Connect Core 1.0 and Discovery 1.0, RFC 6749 for the code grant,
//! RFC 7636 for PKCE, RFC 7517 for the JWKS): discovery, an authorize page with a
//! form a browser submits, the token endpoint, and the keys. It signs RS256 ID tokens
//! with a key made by `openssl` when it starts, checks what a strict provider checks
//! (registered redirect URIs, client authentication, one-time codes bound to their
//! PKCE challenge and redirect URI), and records the token requests it served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Form, Query, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Someone who can sign in.
#[derive(Debug, Clone)]
pub struct User {
    pub subject: String,
    pub tenant: String,
    pub roles: Vec<String>,
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    subject: String,
    issued: Instant,
}

struct Shared {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    key: EncodingKey,
    kid: String,
    jwks: Value,
    redirect_uris: Mutex<Vec<String>>,
    users: Mutex<Vec<User>>,
    codes: Mutex<HashMap<String, Grant>>,
    spent: Mutex<Vec<String>>,
    token_requests: Mutex<Vec<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running provider; dropping it stops the server.
pub struct IdentityProvider {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fresh RSA key (PKCS#1 PEM) from the `openssl` command.
pub fn rsa_key_pem() -> anyhow::Result<Vec<u8>> {
    let output = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .context("run openssl genrsa (tests/run.sh installs openssl)")?;
    if !output.status.success() {
        bail!(
            "openssl genrsa failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

fn random() -> String {
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl IdentityProvider {
    /// A provider on a free loopback port for one client (`client_secret` makes it a
    /// confidential client, authenticated with HTTP Basic or in the form).
    pub async fn start(
        client_id: &str,
        client_secret: Option<&str>,
        users: Vec<User>,
    ) -> anyhow::Result<IdentityProvider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the identity provider stand-in")?;
        let port = listener.local_addr()?.port();
        let pem = rsa_key_pem()?;
        let key = EncodingKey::from_rsa_pem(&pem).context("the openssl key")?;
        let kid = format!("key-{}", &random()[..8]);
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256)
            .context("the public half of the key")?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let shared = Arc::new(Shared {
            issuer: format!("http://127.0.0.1:{port}"),
            client_id: client_id.to_owned(),
            client_secret: client_secret.map(str::to_owned),
            key,
            kid,
            jwks: json!({"keys": [jwk]}),
            redirect_uris: Mutex::new(Vec::new()),
            users: Mutex::new(users),
            codes: Mutex::new(HashMap::new()),
            spent: Mutex::new(Vec::new()),
            token_requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize_page).post(authorize))
            .route("/token", axum::routing::post(token))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(IdentityProvider { shared, server })
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// Registers a redirect URI of the client (exact match, as OIDC requires).
    pub fn allow_redirect(&self, uri: &str) {
        lock(&self.shared.redirect_uris).push(uri.to_owned());
    }

    /// The token requests served so far, as the forms they carried (the client
    /// secret masked) plus how the client authenticated.
    pub fn token_requests(&self) -> Vec<Value> {
        lock(&self.shared.token_requests).clone()
    }

    /// Signs `claims` with the provider's key and key id (for tokens a test shapes).
    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.shared, claims)
    }

    /// Standard ID-token claims for `user`, valid for `ttl`.
    pub fn claims(&self, user: &User, ttl: Duration) -> Value {
        id_claims(&self.shared, user, None, ttl)
    }

    /// The key id the provider signs with.
    pub fn kid(&self) -> &str {
        &self.shared.kid
    }
}

fn sign(shared: &Shared, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(shared.kid.clone());
    jsonwebtoken::encode(&header, claims, &shared.key).unwrap_or_default()
}

fn id_claims(shared: &Shared, user: &User, nonce: Option<&str>, ttl: Duration) -> Value {
    let issued = now();
    let mut claims = json!({
        "iss": shared.issuer,
        "sub": user.subject,
        "aud": shared.client_id,
        "iat": issued,
        "exp": issued + ttl.as_secs(),
        "name": format!("{} (signed in)", user.subject),
        "tenant": user.tenant,
        "roles": user.roles,
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    claims
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let issuer = &shared.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "profile"],
        "grant_types_supported": ["authorization_code"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.jwks.clone())
}

fn bad_page(reason: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!("<!doctype html><p id=error>{}</p>", escape(reason))),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Checks an authorization request. Errors before the redirect URI is trusted are
/// shown on the page (never redirected, OIDC Core 3.1.2.6); later ones go back to
/// the client.
fn check(shared: &Shared, params: &HashMap<String, String>) -> Result<(), Box<Response>> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != shared.client_id {
        return Err(Box::new(bad_page("unknown client_id")));
    }
    let redirect = get("redirect_uri");
    if !lock(&shared.redirect_uris).iter().any(|u| u == redirect) {
        return Err(Box::new(bad_page(
            "redirect_uri is not registered for this client",
        )));
    }
    let refuse = |error: &str, description: &str| {
        let mut url = reqwest_free_url(
            redirect,
            &[
                ("error", error),
                ("error_description", description),
                ("state", get("state")),
            ],
        );
        if url.is_empty() {
            url = redirect.to_owned();
        }
        (StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response()
    };
    if get("response_type") != "code" {
        return Err(Box::new(refuse("unsupported_response_type", "only code")));
    }
    if !get("scope").split(' ').any(|s| s == "openid") {
        return Err(Box::new(refuse("invalid_scope", "openid is required")));
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
        return Err(Box::new(refuse(
            "invalid_request",
            "PKCE with S256 is required",
        )));
    }
    Ok(())
}

/// `base?k=v&…` with the pairs form-encoded.
fn reqwest_free_url(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let join = if base.contains('?') { '&' } else { '?' };
    format!("{base}{join}{}", query.join("&"))
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The sign-in page: who signs in, as a form the browser posts back.
async fn authorize_page(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = check(&shared, &params) {
        return *refused;
    }
    let hidden: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect();
    let options: String = lock(&shared.users)
        .iter()
        .map(|u| format!(r#"<option value="{0}">{0}</option>"#, escape(&u.subject)))
        .collect();
    Html(format!(
        r#"<!doctype html><html><head><title>Sign in</title></head><body>
<h1>Sign in to the identity provider</h1>
<form method="post" action="/authorize">{hidden}
<label>User <select id="user" name="subject">{options}</select></label>
<button id="signin" type="submit">Sign in</button>
</form></body></html>"#
    ))
    .into_response()
}

/// The user signed in: back to the client with a one-time code.
async fn authorize(
    State(shared): State<Arc<Shared>>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = check(&shared, &params) {
        return *refused;
    }
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let subject = get("subject");
    if !lock(&shared.users).iter().any(|u| u.subject == subject) {
        return bad_page("no such user");
    }
    let code = random();
    lock(&shared.codes).insert(
        code.clone(),
        Grant {
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            challenge: get("code_challenge"),
            nonce: params.get("nonce").cloned(),
            subject,
            issued: Instant::now(),
        },
    );
    let mut pairs = vec![("code", code.as_str())];
    let state = get("state");
    if params.contains_key("state") {
        pairs.push(("state", state.as_str()));
    }
    let url = reqwest_free_url(&get("redirect_uri"), &pairs);
    (StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response()
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Client authentication: HTTP Basic (form-encoded parts) or the form's fields.
fn client(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<&'static str, Box<Response>> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let unauthorized = || {
        token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    };
    let (id, secret, method) = match basic {
        Some(pair) => {
            let (id, secret) = pair
                .split_once(':')
                .ok_or_else(|| Box::new(unauthorized()))?;
            (decode(id), Some(decode(secret)), "client_secret_basic")
        }
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned(),
            if form.contains_key("client_secret") {
                "client_secret_post"
            } else {
                "none"
            },
        ),
    };
    if id != shared.client_id {
        return Err(Box::new(unauthorized()));
    }
    match (&shared.client_secret, secret) {
        (Some(expected), Some(given)) if *expected == given => Ok(method),
        (None, None) => Ok(method),
        _ => Err(Box::new(unauthorized())),
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let method = match client(&shared, &headers, &form) {
        Ok(method) => method,
        Err(refused) => return *refused,
    };
    let mut recorded = json!(form);
    if recorded.get("client_secret").is_some() {
        recorded["client_secret"] = json!("[masked]");
    }
    recorded["clientAuth"] = json!(method);
    lock(&shared.token_requests).push(recorded);
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code",
        );
    }
    let code = form.get("code").cloned().unwrap_or_default();
    if lock(&shared.spent).contains(&code) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code was already used",
        );
    }
    let Some(grant) = lock(&shared.codes).remove(&code) else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
    };
    lock(&shared.spent).push(code);
    if grant.issued.elapsed() > Duration::from_secs(60) {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code expired");
    }
    if grant.client_id != shared.client_id
        || form.get("redirect_uri").map(String::as_str) != Some(grant.redirect_uri.as_str())
    {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    if challenge != grant.challenge {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the PKCE code_verifier does not match",
        );
    }
    let Some(user) = lock(&shared.users)
        .iter()
        .find(|u| u.subject == grant.subject)
        .cloned()
    else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "the user is gone");
    };
    let id_token = sign(
        &shared,
        &id_claims(
            &shared,
            &user,
            grant.nonce.as_deref(),
            Duration::from_secs(900),
        ),
    );
    Json(json!({
        "access_token": random(),
        "token_type": "Bearer",
        "expires_in": 900,
        "id_token": id_token,
    }))
    .into_response()
}
