//! `api`: the HTTP gateway.

use serde::{Deserialize, Serialize};

/// `api` area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to bind. Default `127.0.0.1`.
    pub host: String,
    /// Port to bind (0 picks a free one). Default 8900.
    pub port: u16,
    /// Seconds graceful shutdown waits for running turns. Default 30.
    pub shutdown_grace_s: u64,
    /// Bearer token for the management API (`/api/v1`); `FACIO_MANAGEMENT_TOKEN`
    /// wins. Without one the management API refuses every request.
    pub management_token: Option<String>,
    /// Bearer token A2A peers present at the A2A endpoint; `FACIO_A2A_TOKEN` wins. It
    /// must differ from the management token (the node refuses to start otherwise)
    /// and is refused everywhere else.
    pub a2a_token: Option<String>,
    /// Bearer token a Prometheus scraper presents at `GET /metrics`
    /// (`FACIO_METRICS_TOKEN` wins); the management token is accepted there too.
    /// Without either, `/metrics` refuses every request.
    pub metrics_token: Option<String>,
    /// Seconds a client has to send a request's headers once it starts; a slower
    /// client's connection is closed. Default 10.
    pub header_read_timeout_s: u64,
    /// Seconds a request body may pause between pieces before the request is answered
    /// 408. Default 30.
    pub body_idle_timeout_s: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8900,
            shutdown_grace_s: 30,
            management_token: None,
            a2a_token: None,
            metrics_token: None,
            header_read_timeout_s: 10,
            body_idle_timeout_s: 30,
        }
    }
}
