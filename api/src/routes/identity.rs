//! Who is calling: the static management token (the default tenant's admin) or a
//! verified JWT of a known tenant.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use facio_services::auth::{AuthError, Identity, Role};
use facio_services::domain::{TenantId, TenantSettings};

use super::AppState;
use crate::error::ApiError;

/// The subject of callers holding the static management token.
pub(crate) const MANAGEMENT_SUBJECT: &str = "management-token";

/// The bearer token of `Authorization: Bearer …`, if the request has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub(crate) async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let given = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized("missing bearer token (Authorization: Bearer ...)")
    })?;
    if let Some(a2a) = &state.a2a_token
        && facio_services::auth::same_secret(given.as_bytes(), a2a.as_bytes())
    {
        return Err(ApiError::unauthorized(
            "the A2A token is valid only at the A2A endpoint, not here",
        ));
    }
    if let Some(expected) = &state.management_token
        && facio_services::auth::same_secret(given.as_bytes(), expected.as_bytes())
    {
        let identity = Identity {
            subject: MANAGEMENT_SUBJECT.to_owned(),
            tenant: TenantId::default_tenant(),
            roles: vec![Role::Admin],
            jti: None,
        };
        admit(state, &identity.tenant, Some(given)).await?;
        return Ok(identity);
    }
    let refused = |e: AuthError| match e {
        // The provider's keys could not be read: the token may be fine.
        AuthError::Keys(_) => {
            ApiError::unavailable(format!("cannot verify the bearer token now: {e}"))
        }
        e => ApiError::unauthorized(format!("the bearer token is not valid: {e}")),
    };
    let identity = match (&state.oidc, &state.verifier) {
        (Some(oidc), _) if oidc.issued(given) => oidc.verify(given, None).await.map_err(refused)?,
        (_, Some(verifier)) => verifier.verify(given).map_err(refused)?,
        _ => return Err(ApiError::unauthorized("the bearer token is not valid")),
    };
    let known = state
        .runtime
        .store()
        .tenant_exists(&identity.tenant)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if !known {
        return Err(ApiError::unauthorized(
            "the bearer token is not valid: unknown tenant",
        ));
    }
    if let Some(jti) = &identity.jti {
        let revoked = state
            .runtime
            .store()
            .token_revoked(&identity.tenant, jti)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(at) = revoked {
            return Err(ApiError::unauthorized(format!(
                "the bearer token was revoked (jti {jti}, at {})",
                at.to_rfc3339()
            )));
        }
    }
    admit(state, &identity.tenant, Some(given)).await?;
    Ok(identity)
}

/// Admits one request of `tenant` (made with `token`) under the tenant's current
/// rate limits; returns the tenant's settings it read to know them.
pub(crate) async fn admit(
    state: &AppState,
    tenant: &TenantId,
    token: Option<&str>,
) -> Result<TenantSettings, ApiError> {
    let runtime = &state.runtime;
    let settings = runtime
        .tenant_cache()
        .settings(runtime.store().as_ref(), tenant)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    state.limits.admit(
        tenant,
        token,
        &state.config.limits.for_tenant(tenant, &settings),
    )?;
    Ok(settings)
}

/// `scheme://host` of the request as its caller sent it: the `Host` header (when it
/// is a plain authority) and `X-Forwarded-Proto: https` from a proxy in front.
pub(crate) fn request_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Some(format!("{scheme}://{host}"))
}

/// Whether a configured bind host is reachable only from this machine.
pub(crate) fn loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_hosts_count_as_local() {
        for host in ["127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"] {
            assert!(super::loopback(host), "{host}");
        }
        for host in ["0.0.0.0", "::", "10.0.0.5", "example.com", ""] {
            assert!(!super::loopback(host), "{host}");
        }
    }
}
