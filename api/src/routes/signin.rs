//! `/inbox/signin` and `/inbox/callback`: reviewers sign in to the inbox with OpenID
//! Connect (`auth.oidc`). The sign-in's state, PKCE verifier and nonce travel with the
//! browser in a short-lived HttpOnly cookie scoped to `/inbox` (nothing is kept on
//! the node, so any node of a cluster can finish a sign-in another began); the
//! verified ID token reaches the page in the URL fragment, which browsers never send
//! to a server, and the page keeps it for the tab only.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use crate::error::ApiError;

const COOKIE_NAME: &str = "facio_signin";
/// How long a begun sign-in may take at the provider.
const SIGN_IN_S: u32 = 600;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/inbox/signin", get(begin))
        .route("/inbox/callback", get(callback))
}

fn oidc(state: &AppState) -> Result<&facio_services::auth::Oidc, ApiError> {
    state.oidc.as_deref().ok_or_else(|| {
        ApiError::not_found("sign-in with OpenID Connect is not configured (auth.oidc)")
    })
}

/// Where the provider sends the browser back: `auth.oidc.redirectUrl`, else this
/// request's own origin (`X-Forwarded-Proto` says whether a proxy in front speaks
/// https). The provider accepts only redirect URLs registered with it, so a forged
/// `Host` leads nowhere.
fn redirect_uri(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let oidc = oidc(state)?;
    if let Some(url) = oidc.redirect_url() {
        return Ok(url.to_owned());
    }
    let origin = super::identity::request_origin(headers).ok_or_else(|| {
        ApiError::invalid_request(
            None,
            "the request names no usable Host: set auth.oidc.redirectUrl",
        )
    })?;
    Ok(format!("{origin}/inbox/callback"))
}

/// Sends the browser to the provider's sign-in page.
async fn begin(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let redirect = redirect_uri(&state, &headers)?;
    let signin = oidc(&state)?
        .begin(&redirect)
        .await
        .map_err(|e| ApiError::upstream(e.to_string()))?;
    let secure = if redirect.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_NAME}={}.{}.{}; Path=/inbox; Max-Age={SIGN_IN_S}; HttpOnly; SameSite=Lax{secure}",
        signin.state, signin.verifier, signin.nonce
    );
    redirect_with(&signin.url, Some(&cookie))
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: redeem the code, verify the ID token, hand it to the page.
/// Whatever goes wrong is shown on the page, and the sign-in cookie is gone either way.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Result<Response, ApiError> {
    let outcome = finish(&state, &headers, answer).await;
    let clear = format!("{COOKIE_NAME}=; Path=/inbox; Max-Age=0; HttpOnly; SameSite=Lax");
    let target = match outcome {
        Ok(token) => format!("/inbox#token={token}"),
        Err(reason) => {
            tracing::warn!(%reason, "an inbox sign-in failed");
            format!("/inbox#signin-error={}", fragment_encode(&reason))
        }
    };
    redirect_with(&target, Some(&clear))
}

async fn finish(state: &AppState, headers: &HeaderMap, answer: Callback) -> Result<String, String> {
    if let Some(error) = answer.error {
        let described = answer
            .error_description
            .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        return Err(format!(
            "the identity provider refused the sign-in: {error}{described}"
        ));
    }
    let (Some(code), Some(given_state)) = (answer.code, answer.state) else {
        return Err("the identity provider's answer has no code and state".into());
    };
    let cookie = signin_cookie(headers).ok_or(
        "this browser began no sign-in here (or it took longer than 10 minutes): sign in again",
    )?;
    let mut parts = cookie.splitn(3, '.');
    let (Some(expected_state), Some(verifier), Some(nonce)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err("the sign-in cookie is damaged: sign in again".into());
    };
    if !facio_services::auth::same_secret(given_state.as_bytes(), expected_state.as_bytes()) {
        return Err("the answer belongs to another sign-in (state differs): sign in again".into());
    }
    let redirect = redirect_uri(state, headers).map_err(|e| e.to_string())?;
    let oidc = oidc(state).map_err(|e| e.to_string())?;
    let (token, identity) = oidc
        .redeem(&code, verifier, &redirect, nonce)
        .await
        .map_err(|e| e.to_string())?;
    let known = state
        .runtime
        .store()
        .tenant_exists(&identity.tenant)
        .await
        .map_err(|e| format!("cannot read the tenants: {e}"))?;
    if !known {
        return Err(format!(
            "the identity provider names tenant {:?}, which this node does not have",
            identity.tenant.as_str()
        ));
    }
    tracing::info!(subject = %identity.subject, tenant = %identity.tenant, "a reviewer signed in to the inbox");
    Ok(token)
}

fn signin_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

fn redirect_with(location: &str, cookie: Option<&str>) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(location)
        .map_err(|_| ApiError::internal("the redirect URL is not a valid header"))?;
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response();
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Percent-encodes all but unreserved characters, for a message in a URL fragment.
fn fragment_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
