//! `GET /agent-card`: the A2A agent card, as Placet's dashboard reads it.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/agent-card", get(card))
}

/// The card `/.well-known/agent-card.json` serves (protocol 1.0, with v0.3's
/// top-level `url`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub(super) struct AgentCard(Value);

async fn card(State(state): State<AppState>, headers: HeaderMap) -> Json<AgentCard> {
    Json(AgentCard(crate::routes::a2a::agent_card(&state, &headers)))
}
