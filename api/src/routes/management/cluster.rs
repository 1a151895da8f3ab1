//! `GET /api/v1/cluster`: the live nodes and how many sessions each holds.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::domain::NodeId;

use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/cluster", get(nodes))
}

/// `GET /cluster`: the live nodes as this node sees them.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ClusterView {
    #[schema(pattern = "^(single|cluster)$")]
    mode: &'static str,
    /// The node that answered.
    #[serde(rename = "self")]
    me: NodeId,
    /// `connected` or `unreachable`; `null` for a single node.
    #[schema(pattern = "^(connected|unreachable)$")]
    redis: Option<&'static str>,
    nodes: Vec<Member>,
}

/// A live node.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Member {
    id: NodeId,
    /// Where other nodes forward to (`null` for a single node).
    advertise_url: Option<String>,
    started_at: DateTime<Utc>,
    /// Sessions it holds.
    sessions: usize,
    /// Whether it is the node that answered.
    #[serde(rename = "self")]
    me: bool,
}

async fn nodes(State(state): State<AppState>) -> Result<Json<ClusterView>, ApiError> {
    let me = state.runtime.node_id().clone();
    let Some(cluster) = &state.cluster else {
        let started = DateTime::from_timestamp(state.started, 0).unwrap_or_default();
        return Ok(Json(ClusterView {
            mode: "single",
            redis: None,
            nodes: vec![Member {
                id: me.clone(),
                advertise_url: None,
                started_at: started,
                sessions: state.runtime.active_sessions().await?,
                me: true,
            }],
            me,
        }));
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
        nodes.push(Member {
            id: node.id,
            advertise_url: Some(node.advertise_url),
            started_at: node.started_at,
            sessions,
            me: mine,
        });
    }
    Ok(Json(ClusterView {
        mode: "cluster",
        me,
        redis: Some(if cluster.membership.connected() {
            "connected"
        } else {
            "unreachable"
        }),
        nodes,
    }))
}
