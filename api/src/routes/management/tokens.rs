//! `/tokens`: the bearer tokens a tenant's admins issued (`facio tokens create`), and
//! revoking one by its `jti`. A revoked token is refused with 401 from then on.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use facio_services::store::{Applied, AuditEventKind, Change, TokenRecord};
use serde_json::{Value, json};

use super::{Caller, make_change, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list))
        .route("/tokens/{jti}", delete(revoke))
}

/// A token as the API shows it: never the token itself.
pub(crate) fn token_json(token: &TokenRecord) -> Value {
    json!({
        "jti": token.jti,
        "subject": token.subject,
        "roles": token.roles,
        "issuedAt": token.issued_at,
        "expiresAt": token.expires_at,
        "revoked": token.revoked_at.is_some(),
        "revokedAt": token.revoked_at,
        "revokedBy": token.revoked_by,
    })
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tokens = state
        .runtime
        .store()
        .list_tokens(caller.tenant())
        .await
        .map_err(store_error)?;
    Ok(Json(
        json!({"tokens": tokens.iter().map(token_json).collect::<Vec<_>>()}),
    ))
}

async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path(jti): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant();
    let revoke = Change::RevokeToken {
        jti: jti.clone(),
        by: caller.subject().to_owned(),
    };
    let data = json!({"jti": jti, "tenant": tenant});
    let logs = std::slice::from_ref(tenant);
    let kind = AuditEventKind::TokenRevoked;
    let applied = make_change(&state, &caller, tenant, revoke, logs, kind, data)
        .await
        .map_err(store_error)?;
    if applied == Applied::Missing {
        return Err(ApiError::not_found(format!(
            "no token with jti {jti:?} was issued in this tenant"
        )));
    }
    Ok(Json(
        json!({"jti": jti, "revoked": true, "alreadyRevoked": applied == Applied::Unchanged}),
    ))
}
