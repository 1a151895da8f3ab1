//! `GET /api/v1/cluster`: the live nodes and how many sessions each holds.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/cluster", get(nodes))
}

async fn nodes(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let me = state.runtime.node_id().clone();
    let Some(cluster) = &state.cluster else {
        let started = chrono::DateTime::from_timestamp(state.started, 0).unwrap_or_default();
        return Ok(Json(json!({
            "mode": "single",
            "self": me,
            "redis": Value::Null,
            "nodes": [{
                "id": me,
                "advertiseUrl": Value::Null,
                "startedAt": started,
                "sessions": state.runtime.active_sessions().await?,
                "self": true,
            }],
        })));
    };
    // What this node knows now, not up to a third of a TTL ago.
    cluster.membership.refresh_now().await;
    let live = cluster.membership.live();
    let mut nodes = Vec::with_capacity(live.len());
    for node in live {
        let mine = node.id == me;
        let sessions = if mine {
            state.runtime.active_sessions().await?
        } else {
            node.sessions
        };
        nodes.push(json!({
            "id": node.id,
            "advertiseUrl": node.advertise_url,
            "startedAt": node.started_at,
            "sessions": sessions,
            "self": mine,
        }));
    }
    Ok(Json(json!({
        "mode": "cluster",
        "self": me,
        "redis": if cluster.membership.connected() { "connected" } else { "unreachable" },
        "nodes": nodes,
    })))
}
