//! `/tenants`: the tenants of this deployment, for admins of the system (default)
//! tenant only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use facio_services::auth::Role;
use facio_services::domain::TenantId;
use facio_services::store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::Body;
use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/tenants", get(list).post(create))
}

fn system_admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require(&[Role::Admin])?;
    if *caller.tenant() != TenantId::default_tenant() {
        return Err(ApiError::forbidden(
            "only admins of the system tenant manage tenants",
        ));
    }
    Ok(())
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    system_admin(&caller)?;
    let tenants = state
        .runtime
        .store()
        .list_tenants()
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"tenants": tenants})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewTenant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    system_admin(&caller)?;
    let tenant = TenantId::new(body.name)
        .map_err(|e| ApiError::unprocessable(Some("name"), format!("name: {e}")))?;
    match state.runtime.store().create_tenant(&tenant).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(json!({"name": tenant})))),
        Err(StoreError::Conflict(message)) => Err(ApiError::conflict("tenant_exists", message)),
        Err(e) => Err(store_error(e)),
    }
}
