//! Node-to-node at the HTTP edge: the layer that names the node on every response and
//! checks the internal token of forwarded requests, and the internal call a node makes
//! to the node holding a session.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use facio_actors::SessionOpResult;
use facio_services::domain::{NodeId, SessionKey, TenantId};

use super::AppState;
use crate::cluster::{Forwarded, INTERNAL_TOKEN, NODE_HEADER, OpRequest};
use crate::error::ApiError;

/// Every response names the node that ran it (a forwarded one keeps its owner's
/// name), and a request that presents an internal token must present the right one.
pub(crate) async fn node_layer(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let me = state.runtime.node_id().clone();
    if let Some(presented) = request.headers().get(INTERNAL_TOKEN) {
        let valid = state
            .cluster
            .as_ref()
            .is_some_and(|c| c.token_matches(presented.as_bytes()));
        if !valid {
            let mut refused =
                ApiError::forbidden("the internal token is not this cluster's").into_response();
            name_node(&mut refused, &me);
            return refused;
        }
        request.extensions_mut().insert(Forwarded);
    }
    let mut response = next.run(request).await;
    name_node(&mut response, &me);
    response
}

fn name_node(response: &mut Response, me: &NodeId) {
    if !response.headers().contains_key(NODE_HEADER)
        && let Ok(value) = HeaderValue::from_str(me.as_str())
    {
        response.headers_mut().insert(NODE_HEADER, value);
    }
}

/// `POST /internal/v1/sessions/op`: another node found this one holding a session.
pub(crate) async fn session_op(
    axum::extract::State(state): axum::extract::State<AppState>,
    forwarded: Option<axum::Extension<Forwarded>>,
    axum::Json(body): axum::Json<OpRequest>,
) -> Result<axum::Json<SessionOpResult>, ApiError> {
    if forwarded.is_none() {
        return Err(ApiError::forbidden(
            "internal calls need the cluster's internal token",
        ));
    }
    let tenant = TenantId::new(body.tenant.clone())
        .map_err(|e| ApiError::invalid_request(Some("tenant"), e.to_string()))?;
    let key = SessionKey::new(body.session_key)
        .map_err(|e| ApiError::invalid_request(Some("sessionKey"), e.to_string()))?;
    let result = state.runtime.session_op(tenant, key, body.op).await?;
    Ok(axum::Json(result))
}
