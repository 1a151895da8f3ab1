//! `/tenants`: the tenants of this deployment and their settings (model allow list,
//! token budgets). Admins of the system (default) tenant manage them; a tenant's own
//! admins and operators may read their tenant's settings.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use facio_services::domain::{TenantId, TenantSettings, TenantSettingsPatch};
use facio_services::store::{AuditEventKind, Change, StoreError};
use facio_services::tenant_cache::TenantCacheEvent;
use serde::Deserialize;
use serde_json::json;

use super::json::Body;
use super::{Caller, make_change, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(list).post(create))
        .route("/tenants/{name}", get(show).patch(update))
}

/// `GET /tenants`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TenantList {
    tenants: Vec<TenantId>,
}

/// `POST /tenants`: the tenant created.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Created {
    name: TenantId,
}

/// A tenant and its own settings (absent ones follow the config).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TenantView {
    name: TenantId,
    settings: TenantSettings,
}

async fn list(State(state): State<AppState>) -> Result<Json<TenantList>, ApiError> {
    let tenants = state
        .runtime
        .store()
        .list_tenants()
        .await
        .map_err(store_error)?;
    Ok(Json(TenantList { tenants }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    #[schema(value_type = TenantId)]
    name: String,
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewTenant>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let tenant = TenantId::new(body.name)
        .map_err(|e| ApiError::unprocessable(Some("name"), format!("name: {e}")))?;
    // Recorded in the system tenant's log and in the new tenant's own.
    let logs = [TenantId::default_tenant(), tenant.clone()];
    let data = json!({"tenant": tenant});
    let kind = AuditEventKind::TenantCreated;
    match make_change(
        &state,
        &caller,
        &tenant,
        Change::CreateTenant,
        &logs,
        kind,
        data,
    )
    .await
    {
        Ok(_) => Ok((StatusCode::CREATED, Json(Created { name: tenant }))),
        Err(StoreError::Conflict(message)) => Err(ApiError::conflict("tenant_exists", message)),
        Err(e) => Err(store_error(e)),
    }
}

/// A tenant named in a path: unknown names (and, for non-system callers, other
/// tenants) are 404, as if they did not exist.
async fn named(state: &AppState, caller: &Caller, name: String) -> Result<TenantId, ApiError> {
    let tenant = TenantId::new(name).map_err(|_| ApiError::not_found("tenant does not exist"))?;
    let system = *caller.tenant() == TenantId::default_tenant();
    if !system && *caller.tenant() != tenant {
        return Err(ApiError::not_found("tenant does not exist"));
    }
    let exists = state
        .runtime
        .store()
        .tenant_exists(&tenant)
        .await
        .map_err(store_error)?;
    if !exists {
        return Err(ApiError::not_found("tenant does not exist"));
    }
    Ok(tenant)
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    let tenant = named(&state, &caller, name).await?;
    let settings = state
        .runtime
        .store()
        .tenant_settings(&tenant)
        .await
        .map_err(store_error)?;
    Ok(Json(TenantView {
        name: tenant,
        settings,
    }))
}

async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(patch): Body<TenantSettingsPatch>,
) -> Result<Json<TenantView>, ApiError> {
    let tenant = named(&state, &caller, name).await?;
    let store = state.runtime.store();
    let mut settings = store.tenant_settings(&tenant).await.map_err(store_error)?;
    let before = settings.clone();
    settings.merge(patch);
    if settings != before {
        let mut data = before.changes(&settings);
        data["tenant"] = json!(tenant);
        let change = Change::TenantSettings(settings.clone());
        let logs = std::slice::from_ref(&tenant);
        let kind = AuditEventKind::SettingsChanged;
        make_change(&state, &caller, &tenant, change, logs, kind, data)
            .await
            .map_err(store_error)?;
        state
            .runtime
            .tenant_cache()
            .changed(TenantCacheEvent::Settings(tenant.clone()));
    }
    Ok(Json(TenantView {
        name: tenant,
        settings,
    }))
}
