//! The management API (`/api/v1`): runs, reviews, policy and audit. Callers are the
//! static management token (the default tenant's admin) or a JWT naming a tenant
//! and roles; every handler works inside the caller's tenant only.

mod agent;
mod audit;
mod catalog;
mod channels;
mod cluster;
mod commands;
mod credentials;
mod cron;
mod json;
mod mcp;
mod peers;
mod placet_hook;
mod policy;
mod reviews;
mod runs;
mod sessions;
mod settings;
mod skills;
mod tenants;
mod tokens;
mod usage;
mod workspace;

pub(crate) use settings::masked as masked_config;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use facio_services::auth::Identity;
use facio_services::domain::TenantId;
use facio_services::store::{Applied, AuditEventKind, Change, NewAuditEvent, StoreError};

use super::AppState;
use crate::error::ApiError;

pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .merge(runs::routes())
        .merge(reviews::routes())
        .merge(policy::routes())
        .merge(audit::routes())
        .merge(tenants::routes())
        .merge(cluster::routes())
        .merge(tokens::routes())
        .merge(sessions::routes())
        .merge(usage::routes())
        .merge(credentials::routes())
        .merge(commands::routes())
        .merge(workspace::routes())
        .merge(settings::routes())
        .merge(skills::routes())
        .merge(agent::routes())
        .merge(mcp::routes())
        .merge(peers::routes())
        .merge(channels::routes())
        .merge(cron::routes())
        .merge(placet_hook::routes())
        .route_layer(axum::middleware::from_fn(check_roles))
        .fallback(|| async { ApiError::not_found("no such management route") })
        .layer(axum::middleware::from_fn_with_state(state, authorize));
    // The document describes the API, not a tenant's data: readable without a token.
    Router::new()
        .route(
            "/openapi.json",
            axum::routing::get(|State(state): State<AppState>| async move {
                let providers: Vec<String> = state.config.providers.keys().cloned().collect();
                axum::Json(catalog::openapi(&providers))
            }),
        )
        .merge(guarded)
}

/// Resolves the caller: the static management token is the default tenant's admin;
/// anything else must be a valid JWT of a known tenant.
async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !state.auth_configured() {
        return Err(ApiError::unauthorized(
            "the management API is disabled: set api.managementToken (FACIO_MANAGEMENT_TOKEN) or auth keys",
        ));
    }
    let identity = crate::routes::identity::identify(&state, request.headers()).await?;
    request.extensions_mut().insert(identity);
    Ok(next.run(request).await)
}

/// Admits the caller only with a role the route's catalog entry lists (admins hold
/// every role), and to system-only routes only from the system tenant. A route with
/// no entry admits nobody: documenting a route is how it is opened.
async fn check_roles(
    matched: axum::extract::MatchedPath,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let identity = request
        .extensions()
        .get::<Identity>()
        .ok_or_else(|| ApiError::unauthorized("no verified caller"))?;
    let path = matched.as_str();
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let doc = catalog::find(request.method().as_str(), path)
        .ok_or_else(|| ApiError::forbidden("this route admits no role"))?;
    if !identity.may(doc.roles) {
        let mut names = vec!["admin"];
        names.extend(doc.roles.iter().map(|r| r.as_str()));
        return Err(ApiError::forbidden(format!(
            "this needs the role {}",
            names.join(" or ")
        )));
    }
    if doc.system_only && identity.tenant != TenantId::default_tenant() {
        return Err(ApiError::forbidden(
            "only callers of the system tenant may use this route",
        ));
    }
    Ok(next.run(request).await)
}

/// The verified caller of a management route and the id of its request.
pub(super) struct Caller(pub Identity, pub crate::routes::RequestId);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let request = parts
            .extensions
            .get::<crate::routes::RequestId>()
            .cloned()
            .unwrap_or_else(crate::routes::RequestId::fresh);
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .map(|identity| Caller(identity, request))
            .ok_or_else(|| ApiError::unauthorized("no verified caller"))
    }
}

impl Caller {
    pub fn tenant(&self) -> &TenantId {
        &self.0.tenant
    }

    /// The verified subject (`management-token` for the static token).
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// What every change event names besides the actor: the surface (the API), the
    /// tenant the caller's token names and the request's id (as [`change_event`]).
    pub fn audit_context(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut context = serde_json::Map::new();
        context.insert("surface".into(), "api".into());
        context.insert("actorTenant".into(), self.tenant().to_string().into());
        context.insert("requestId".into(), self.1.to_string().into());
        context
    }
}

/// The audit event of a change `caller` makes: the caller as actor, with the tenant
/// their token names, the surface it came through (the API unless `data` says) and
/// the request's id. `data` must never hold a secret value.
pub(super) fn change_event(
    caller: &Caller,
    kind: AuditEventKind,
    data: serde_json::Value,
) -> NewAuditEvent {
    let mut data = data;
    if let Some(fields) = data.as_object_mut() {
        fields
            .entry("surface")
            .or_insert_with(|| serde_json::Value::String("api".to_owned()));
        fields.insert(
            "actorTenant".to_owned(),
            serde_json::Value::String(caller.0.tenant.to_string()),
        );
        fields.insert(
            "requestId".to_owned(),
            serde_json::Value::String(caller.1.to_string()),
        );
    }
    NewAuditEvent {
        kind,
        session_key: None,
        run_id: None,
        actor: caller.0.subject.clone(),
        data,
    }
}

/// Makes `change` in `tenant` and records it as `kind` with `data` in the logs of
/// `logs` (usually just `tenant`), in one transaction: a change whose event cannot
/// be written is not made.
pub(super) async fn make_change(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    change: Change,
    logs: &[TenantId],
    kind: AuditEventKind,
    data: serde_json::Value,
) -> Result<Applied, StoreError> {
    let event = change_event(caller, kind, data);
    let events = logs
        .iter()
        .map(|log| (log.clone(), event.clone()))
        .collect();
    state
        .runtime
        .store()
        .apply_change(tenant, change, events)
        .await
}

/// Records in `tenant`'s log a change outside the store (a file, the node's
/// settings, a stop), with the caller as actor.
pub(super) async fn audit_change(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    kind: AuditEventKind,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    let logs = [tenant.clone()];
    make_change(state, caller, tenant, Change::Record, &logs, kind, data)
        .await
        .map(|_| ())
        .map_err(store_error)
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) => ApiError::not_found(format!("{what} does not exist")),
        other => ApiError::internal(other.to_string()),
    }
}
