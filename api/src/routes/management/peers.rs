//! `/a2a/peers`: the tenant's A2A peer agents, which `call_agent` calls. Registering
//! one reads its card (nothing is stored when it cannot be read); its token is a
//! `${credentials.KEY}` reference, resolved at each call.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use facio_services::a2a_client::{CallError, PeerActor, PeerReply, PeerView, PeersError};
use serde::Deserialize;

use super::Caller;
use super::json::Body;
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/a2a/peers", get(list).post(create))
        .route("/a2a/peers/{alias}", get(show).delete(remove))
        .route("/a2a/peers/{alias}/refresh", post(refresh))
        .route("/a2a/peers/{alias}/card", get(card))
        .route("/a2a/peers/{alias}/call", post(send))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PeerList {
    peers: Vec<PeerView>,
}

/// A peer to register.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewPeer {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    alias: String,
    /// Where its agent card is (e.g. `https://agent.example/.well-known/agent-card.json`).
    #[schema(pattern = "^https?://\\S+$")]
    card_url: String,
    /// `${credentials.KEY}`: sent as the bearer token.
    #[schema(pattern = "^\\$\\{credentials\\.[A-Za-z0-9_.-]+\\}$")]
    token: Option<String>,
}

/// A message to send to the peer now.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PeerMessage {
    #[schema(min_length = 1)]
    message: String,
    task_id: Option<String>,
    context_id: Option<String>,
    #[schema(minimum = 1, maximum = 600)]
    timeout_s: Option<u64>,
}

fn actor(caller: &Caller) -> PeerActor {
    PeerActor {
        name: caller.subject().to_owned(),
        context: caller.audit_context(),
    }
}

fn refused(e: PeersError) -> ApiError {
    match e {
        PeersError::Invalid(m) => ApiError::invalid_request(None, m),
        PeersError::NotFound(alias) => {
            ApiError::not_found(format!("there is no peer named {alias}"))
        }
        PeersError::Conflict(m) => ApiError::conflict("peer_exists", m),
        e @ PeersError::Card { .. } => ApiError::unprocessable(Some("cardUrl"), e.to_string()),
        PeersError::Store(e) => super::store_error(e),
    }
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<PeerList>, ApiError> {
    let peers = state.runtime.a2a_peers().list(caller.tenant()).await;
    Ok(Json(PeerList {
        peers: peers.map_err(super::store_error)?,
    }))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<Json<PeerView>, ApiError> {
    let peers = state.runtime.a2a_peers();
    peers
        .get(caller.tenant(), &alias)
        .await
        .map(Json)
        .map_err(refused)
}

/// A peer's agent card.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(value_type = Object)]
pub(super) struct Card(serde_json::Value);

async fn card(
    caller: Caller,
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<Json<Card>, ApiError> {
    let peers = state.runtime.a2a_peers();
    let peer = peers.get(caller.tenant(), &alias).await.map_err(refused)?;
    Ok(Json(Card(peer.card)))
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewPeer>,
) -> Result<(StatusCode, Json<PeerView>), ApiError> {
    let peers = state.runtime.a2a_peers();
    let view = peers
        .register(
            caller.tenant(),
            &body.alias,
            &body.card_url,
            body.token,
            false,
            &actor(&caller),
        )
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn refresh(
    caller: Caller,
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<Json<PeerView>, ApiError> {
    let peers = state.runtime.a2a_peers();
    let known = peers.get(caller.tenant(), &alias).await.map_err(refused)?;
    peers
        .register(
            caller.tenant(),
            &alias,
            &known.card_url,
            known.token,
            true,
            &actor(&caller),
        )
        .await
        .map(Json)
        .map_err(refused)
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<StatusCode, ApiError> {
    let peers = state.runtime.a2a_peers();
    peers
        .remove(caller.tenant(), &alias, &actor(&caller))
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Calls the peer as `call_agent` would, for an operator trying it out.
async fn send(
    caller: Caller,
    State(state): State<AppState>,
    Path(alias): Path<String>,
    Body(body): Body<PeerMessage>,
) -> Result<Json<PeerReply>, ApiError> {
    let tenant = caller.tenant();
    let secrets = state.secrets(tenant).await?;
    let timeout = std::time::Duration::from_secs(body.timeout_s.unwrap_or(60).clamp(1, 600));
    let reply = state
        .runtime
        .a2a_peers()
        .call(
            tenant,
            &alias,
            &secrets,
            facio_services::a2a_client::Outgoing {
                text: &body.message,
                task_id: body.task_id.as_deref(),
                context_id: body.context_id.as_deref(),
                timeout,
            },
        )
        .await;
    match reply {
        Ok(reply) => Ok(Json(reply)),
        Err(CallError::Peer(e)) => Err(refused(e)),
        Err(CallError::Token(why)) => Err(ApiError::unprocessable(Some("token"), why)),
        Err(CallError::Wire(e)) => Err(ApiError::upstream(format!("{alias}: {e}"))),
    }
}
