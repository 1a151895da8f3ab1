//! Running the gateway: bind, serve until a shutdown signal, then drain the runtime.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bootstrap::Node;
use crate::routes::{AppState, router};

/// Why the gateway could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error(
        "the A2A token must differ from the management token: a peer holding it would \
         administer the default tenant"
    )]
    SharedToken,
    #[error("cannot join the cluster: {0}")]
    Cluster(facio_services::cluster::ClusterError),
}

/// A bearer token from the environment variable `var`, else from config; blank is none.
fn token(var: &str, configured: Option<&String>) -> Option<std::sync::Arc<str>> {
    let token = std::env::var(var)
        .ok()
        .or_else(|| configured.cloned())
        .filter(|t| !t.trim().is_empty())?;
    facio_services::vault::remember(&token);
    Some(token.into())
}

/// Serves `node` until `shutdown` resolves, then stops taking requests, lets running
/// turns finish within `api.shutdownGraceS` and interrupts the rest (their progress
/// is stored). Prints `listening on http://ADDR` once ready.
pub async fn serve(
    node: Node,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let api = &node.config.api;
    let addr = format!("{}:{}", api.host, api.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local: SocketAddr = listener.local_addr().map_err(ServeError::Serve)?;
    let management_token = token(
        "FACIO_MANAGEMENT_TOKEN",
        node.config.api.management_token.as_ref(),
    );
    let a2a_token = token("FACIO_A2A_TOKEN", node.config.api.a2a_token.as_ref());
    if a2a_token.is_some() && a2a_token == management_token {
        return Err(ServeError::SharedToken);
    }
    // In cluster mode the node joins once it can be reached, at the port it bound.
    let leaving = CancellationToken::new();
    let cluster = match node.config.cluster.redis() {
        None => None,
        Some(redis) => {
            let token = node.config.cluster.token().unwrap_or_default();
            facio_services::vault::remember(token);
            let advertise = node
                .config
                .cluster
                .advertise_url
                .clone()
                .unwrap_or_else(|| {
                    let host = match api.host.as_str() {
                        "0.0.0.0" | "::" | "[::]" => std::env::var("HOSTNAME")
                            .ok()
                            .filter(|h| !h.is_empty())
                            .unwrap_or_else(|| local.ip().to_string()),
                        host => host.to_owned(),
                    };
                    format!("http://{host}:{}", local.port())
                });
            let joined = crate::cluster::Cluster::join(
                &node.runtime,
                redis,
                token,
                advertise.clone(),
                leaving.clone(),
            )
            .await
            .map_err(ServeError::Cluster)?;
            tracing::info!(node = %node.runtime.node_id(), %advertise, "joined the cluster");
            Some(joined)
        }
    };
    let state = AppState {
        cluster: cluster.clone(),
        runtime: node.runtime.clone(),
        config: node.config.clone(),
        started: chrono::Utc::now().timestamp(),
        management_token,
        a2a_token,
        metrics_token: token(
            "FACIO_METRICS_TOKEN",
            node.config.api.metrics_token.as_ref(),
        ),
        verifier: node.verifier.clone(),
        oidc: node.oidc.clone(),
        limits: std::sync::Arc::default(),
        hooks: std::sync::Arc::default(),
        config_at_start: std::sync::Arc::new(
            facio_services::config::Config::load(node.config.config_file.as_deref())
                .map(|files| crate::routes::masked_config(&files))
                .unwrap_or_default(),
        ),
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "facio {} listening on http://{local}",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(out, "store: {}", node.store_url);
        if let Some(cluster) = &cluster {
            let _ = writeln!(
                out,
                "cluster: node {} of {} live",
                node.runtime.node_id(),
                cluster.membership.live().len()
            );
        }
        let _ = writeln!(out, "workspace: {}", node.config.workspace_dir().display());
        let _ = out.flush();
    }
    tracing::info!(%local, "gateway listening");
    // The gauges (live sessions, pending reviews, the store's queue) are read when
    // scraped and, for an OTLP export, every 15 s.
    if facio_services::telemetry::metrics_exported() {
        let state = state.clone();
        let leaving = leaving.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    () = leaving.cancelled() => return,
                    _ = every.tick() => crate::routes::refresh_gauges(&state).await,
                }
            }
        });
    }
    register_with_placet(&node, state.management_token.clone());
    // Telegram bots stop polling when the node starts draining.
    let polling = CancellationToken::new();
    crate::telegram::start(&node.runtime, &polling);
    // On the signal the node drains: `/readyz` answers 503 and the node takes no new
    // sessions, while turns of the sessions it holds finish. A single node stops
    // accepting connections at once. In a cluster it keeps listening (passing new
    // sessions on to other nodes) until it has given its sessions back and every node
    // has seen it go, so no request sent to it in the meantime fails.
    let signalled = CancellationToken::new();
    tokio::spawn({
        let signalled = signalled.clone();
        async move {
            shutdown.await;
            signalled.cancel();
        }
    });
    let stopping = CancellationToken::new();
    let server = crate::connections::serve_connections(
        listener,
        router(state),
        Duration::from_secs(node.config.api.header_read_timeout_s.max(1)),
        stopping.clone(),
    );
    let drain = async {
        signalled.cancelled().await;
        tracing::info!("shutting down: no new sessions; draining running turns");
        polling.cancel();
        node.runtime.begin_drain();
        let began = tokio::time::Instant::now();
        match &cluster {
            Some(cluster) => cluster.membership.drain().await,
            None => stopping.cancel(),
        }
        node.runtime
            .shutdown(Duration::from_secs(node.config.api.shutdown_grace_s))
            .await;
        // Gone from the membership at once, its leases given back as its sessions
        // stopped: other nodes take its sessions over without waiting.
        leaving.cancel();
        if let Some(cluster) = &cluster {
            cluster.membership.leave().await;
            // Every node re-reads the membership each third of the lease TTL.
            let seen = Duration::from_millis(cluster.membership.ttl_secs() * 1000 / 3 + 500);
            tokio::time::sleep_until(began + seen).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        stopping.cancel();
    };
    tokio::join!(server, drain);
    Ok(())
}

/// Tells Placet (when configured with a `managementUrl`) where this agent's management
/// API is, so its dashboard can proxy to it. Failure is logged, not fatal: review
/// delivery works without it.
fn register_with_placet(node: &Node, token: Option<std::sync::Arc<str>>) {
    let placet = &node.config.channels.placet;
    let (Some((url, key, channel)), Some(management_url), Some(token)) =
        (placet.delivery(), placet.management_url.clone(), token)
    else {
        return;
    };
    let client = match facio_services::placet::PlacetClient::new(url, key, channel) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Placet client");
            return;
        }
    };
    tokio::spawn(async move {
        match client.register(&management_url, &token).await {
            Ok(()) => tracing::info!(%management_url, "registered the management API with Placet"),
            Err(e) => tracing::warn!(error = %e, "could not register with Placet"),
        }
    });
}
