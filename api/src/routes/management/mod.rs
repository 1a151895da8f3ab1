//! The management API (`/api/v1`): runs, reviews, policy and audit, behind the
//! management bearer token until tenants and roles generalize it.

mod audit;
mod json;
mod policy;
mod reviews;
mod runs;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use facio_services::store::StoreError;

use super::AppState;
use crate::error::ApiError;

pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(runs::routes())
        .merge(reviews::routes())
        .merge(policy::routes())
        .merge(audit::routes())
        .fallback(|| async { ApiError::not_found("no such management route") })
        .layer(axum::middleware::from_fn_with_state(state, authorize))
}

async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.management_token else {
        return Err(ApiError::unauthorized(
            "the management API is disabled: set api.managementToken or FACIO_MANAGEMENT_TOKEN",
        ));
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer ...)")
        })?;
    if !same(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::unauthorized("the bearer token is not valid"));
    }
    Ok(next.run(request).await)
}

/// Compares without stopping at the first difference, so timing does not reveal how
/// much of a guessed token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) => ApiError::not_found(format!("{what} does not exist")),
        other => ApiError::internal(other.to_string()),
    }
}
