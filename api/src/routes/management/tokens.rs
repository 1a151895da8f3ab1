//! `/tokens`: the bearer tokens a tenant's admins issued (`facio tokens create`), and
//! revoking one by its `jti`. A revoked token is refused with 401 from then on.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::auth::Role;
use facio_services::store::{Applied, AuditEventKind, Change, TokenRecord};
use serde_json::json;

use super::{Caller, make_change, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list))
        .route("/tokens/{jti}", delete(revoke))
}

/// A token as the API shows it: never the token itself.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenView {
    jti: String,
    /// `null` for a revocation of a token this node did not issue.
    subject: Option<String>,
    roles: Vec<Role>,
    issued_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
    revoked_at: Option<DateTime<Utc>>,
    revoked_by: Option<String>,
}

impl From<TokenRecord> for TokenView {
    fn from(token: TokenRecord) -> Self {
        TokenView {
            revoked: token.revoked_at.is_some(),
            jti: token.jti,
            subject: token.subject,
            roles: token.roles,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
            revoked_by: token.revoked_by,
        }
    }
}

/// `GET /tokens`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TokenList {
    tokens: Vec<TokenView>,
}

/// `DELETE /tokens/{jti}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Revoked {
    jti: String,
    revoked: bool,
    /// Whether it had been revoked before.
    already_revoked: bool,
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = state
        .runtime
        .store()
        .list_tokens(caller.tenant())
        .await
        .map_err(store_error)?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path(jti): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
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
    Ok(Json(Revoked {
        jti,
        revoked: true,
        already_revoked: applied == Applied::Unchanged,
    }))
}
