//! `GET /v1/models`: the model this gateway answers with, in the OpenAI list shape.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/v1/models", get(list))
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": state.config.agents.defaults.model,
            "object": "model",
            "created": state.started,
            "owned_by": "facio",
        }],
    }))
}
