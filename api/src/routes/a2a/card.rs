//! The agent card: who this agent is, where its JSON-RPC endpoint is, and what it
//! accepts, built from `a2a` in the config.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::routes::AppState;

/// `GET /.well-known/agent-card.json`: public, as discovery needs.
pub(super) async fn public_card(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    Json(agent_card(&state, &headers))
}

/// The public base URL of this node as the caller reached it.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.a2a.url {
        return url.trim_end_matches('/').to_owned();
    }
    crate::routes::identity::request_origin(headers)
        .unwrap_or_else(|| format!("http://{}:{}", state.config.api.host, state.config.api.port))
}

/// The card, v1.0 (with the v0.3 top-level `url`, `protocolVersion` and
/// `preferredTransport` for older clients).
pub(crate) fn agent_card(state: &AppState, headers: &HeaderMap) -> Value {
    let a2a = &state.config.a2a;
    let endpoint = format!("{}/a2a", base_url(state, headers));
    let skills: Vec<Value> = if a2a.skills.is_empty() {
        vec![json!({
            "id": "general",
            "name": "General assistance",
            "description": "Answers questions and carries out tasks with its tools; risky steps wait for a human reviewer",
            "tags": ["assistant", "tools", "human-in-the-loop"],
        })]
    } else {
        a2a.skills
            .iter()
            .map(|s| {
                json!({"id": s.id, "name": s.name, "description": s.description,
                       "tags": s.tags, "examples": s.examples})
            })
            .collect()
    };
    let mut card = json!({
        "name": a2a.name,
        "description": a2a.description,
        "version": a2a.version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
        "supportedInterfaces": [
            {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "capabilities": {"streaming": true, "pushNotifications": false, "extendedAgentCard": false},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": skills,
        // v0.3 readers take these from the top level.
        "url": endpoint,
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
    });
    if let Some(provider) = &a2a.provider {
        card["provider"] = json!({"organization": provider.organization, "url": provider.url});
    }
    if state.a2a_token.is_some() || state.auth_configured() {
        card["securitySchemes"] = json!({"bearer": {"httpAuthSecurityScheme": {
            "scheme": "Bearer",
            "description": "api.a2aToken, or a JWT of the caller's tenant with the role client",
        }}});
        card["securityRequirements"] = json!([{"schemes": {"bearer": {"list": []}}}]);
    }
    card
}
