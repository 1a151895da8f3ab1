//! `/tenants`: the tenants of this deployment and their settings (model allow list,
//! token budgets). Admins of the system (default) tenant manage them; a tenant's own
//! admins and operators may read their tenant's settings.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use facio_services::domain::{TenantId, TenantSettingsPatch};
use facio_services::store::{AuditEventKind, StoreError};
use facio_services::tenant_cache::TenantCacheEvent;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::Body;
use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(list).post(create))
        .route("/tenants/{name}", get(show).patch(update))
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
    let tenant = TenantId::new(body.name)
        .map_err(|e| ApiError::unprocessable(Some("name"), format!("name: {e}")))?;
    match state.runtime.store().create_tenant(&tenant).await {
        Ok(()) => {
            let data = json!({"tenant": tenant, "surface": "api"});
            for chain in [TenantId::default_tenant(), tenant.clone()] {
                super::audit_change(
                    &state,
                    &caller,
                    &chain,
                    AuditEventKind::TenantCreated,
                    data.clone(),
                )
                .await?;
            }
            Ok((StatusCode::CREATED, Json(json!({"name": tenant}))))
        }
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
) -> Result<Json<Value>, ApiError> {
    let tenant = named(&state, &caller, name).await?;
    let settings = state
        .runtime
        .store()
        .tenant_settings(&tenant)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"name": tenant, "settings": settings})))
}

async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(patch): Body<TenantSettingsPatch>,
) -> Result<Json<Value>, ApiError> {
    let tenant = named(&state, &caller, name).await?;
    let store = state.runtime.store();
    let mut settings = store.tenant_settings(&tenant).await.map_err(store_error)?;
    let before = settings.clone();
    settings.merge(patch);
    store
        .put_tenant_settings(&tenant, &settings)
        .await
        .map_err(store_error)?;
    state
        .runtime
        .tenant_cache()
        .changed(TenantCacheEvent::Settings(tenant.clone()));
    let audited = super::audit_change(
        &state,
        &caller,
        &tenant,
        AuditEventKind::SettingsChanged,
        json!({"tenant": tenant, "before": before, "settings": settings, "surface": "api"}),
    )
    .await;
    if let Err(e) = audited {
        // A change whose audit event cannot be written is taken back.
        store
            .put_tenant_settings(&tenant, &before)
            .await
            .map_err(store_error)?;
        state
            .runtime
            .tenant_cache()
            .changed(TenantCacheEvent::Settings(tenant.clone()));
        return Err(e);
    }
    Ok(Json(json!({"name": tenant, "settings": settings})))
}
