//! The gateway's routes, one group per file, composed here with the layers that apply
//! to all of them.

mod a2a;
mod chat;
mod health;
pub(crate) mod hooks;
mod identity;
mod inbox;
mod internal;
mod limits;
mod management;
mod models;
mod observe;
mod request_id;
mod signin;
mod slow_body;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use facio_actors::Runtime;
use facio_services::config::Config;

use crate::error::ApiError;

/// Largest request body accepted (a chat request with a long conversation fits).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub runtime: Arc<Runtime>,
    pub config: Arc<Config>,
    /// Unix seconds the gateway started (reported as model `created`).
    pub started: i64,
    /// The management API's bearer token; none means the API refuses everyone.
    pub management_token: Option<Arc<str>>,
    /// The token A2A peers present; valid only at the A2A endpoint.
    pub a2a_token: Option<Arc<str>>,
    /// The token a Prometheus scraper presents at `/metrics`.
    pub metrics_token: Option<Arc<str>>,
    /// Verifies JWTs (tenants and roles); none when no keys are configured.
    pub verifier: Option<Arc<facio_services::auth::Verifier>>,
    /// The OpenID Connect provider reviewers sign in with; its ID tokens are bearer
    /// tokens too.
    pub oidc: Option<Arc<facio_services::auth::Oidc>>,
    /// Request rate limits per tenant and per token.
    pub limits: Arc<limits::Limits>,
    /// The config as its files said when the node started (secrets masked), against
    /// which `/api/v1/settings` names the keys waiting for a restart.
    pub config_at_start: Arc<serde_json::Value>,
    /// This node's cluster, in cluster mode.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// What the webhook channels share (replay checks, message ids, the client).
    pub hooks: Arc<hooks::Hooks>,
}

impl AppState {
    /// Whether any way of proving who calls is configured (then every API wants it).
    pub(crate) fn auth_configured(&self) -> bool {
        self.management_token.is_some() || self.verifier.is_some() || self.oidc.is_some()
    }

    /// In a cluster, the answer of the node that owns `session` when that is not this
    /// one (the request, `onward` and `body`, is passed on there); `None`: it runs
    /// here.
    pub(crate) async fn on_owner(
        &self,
        tenant: &facio_services::domain::TenantId,
        session: &facio_services::domain::SessionKey,
        onward: &crate::cluster::Onward,
        body: &axum::body::Bytes,
    ) -> Result<Option<axum::response::Response>, ApiError> {
        let Some(cluster) = self.cluster.as_ref().filter(|_| !onward.forwarded) else {
            return Ok(None);
        };
        cluster
            .route(
                &self.runtime,
                tenant,
                session,
                &axum::http::Method::POST,
                &onward.uri,
                &onward.headers,
                body.clone(),
            )
            .await
    }

    /// The tenant's credentials, opened (through the tenant cache).
    pub(crate) async fn secrets(
        &self,
        tenant: &facio_services::domain::TenantId,
    ) -> Result<Arc<facio_services::vault::Secrets>, ApiError> {
        self.runtime
            .tenant_cache()
            .credentials(self.runtime.store().as_ref(), self.runtime.vault(), tenant)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))
    }
}

pub(crate) use observe::refresh_gauges;
pub(crate) use request_id::RequestId;

/// The config as JSON with every secret masked.
pub(crate) use management::masked_config;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(models::routes())
        .merge(chat::routes())
        .merge(inbox::routes())
        .merge(signin::routes())
        .merge(a2a::routes())
        .merge(hooks::routes())
        .nest("/api/v1", management::routes(state.clone()))
        .route("/metrics", axum::routing::get(observe::scrape))
        .route(
            "/internal/v1/sessions/op",
            axum::routing::post(internal::session_op),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_secs(state.config.api.body_idle_timeout_s.max(1)),
            slow_body::idle_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            internal::node_layer,
        ))
        .layer(axum::middleware::from_fn(observe::http_span))
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(state)
}
