//! `facio serve`: the gateway, until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use facio::Node;
use facio_services::config::Config;

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to bind (overrides api.host).
    #[arg(long)]
    host: Option<String>,
    /// Port to bind (overrides api.port; 0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
}

pub async fn run(globals: &Globals, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(globals.config.as_deref())?;
    let node_name = config
        .cluster
        .node()
        .map(|node| node.to_string())
        .unwrap_or_default();
    let telemetry = facio::telemetry::init(&config.telemetry, &node_name)?;
    super::logging::init(&config.logging, None, telemetry.tracer());
    if let Some(host) = args.host {
        config.api.host = host;
    }
    if let Some(port) = args.port {
        config.api.port = port;
    }
    if let Some(workspace) = &globals.workspace {
        config.agents.defaults.workspace =
            Some(std::path::absolute(workspace).context("resolving --workspace")?);
    }
    let node = Node::start_with_config(config, true, false).await?;
    let served = facio::serve(node, shutdown_signal()).await;
    // Off the async threads: the exporters' last flush blocks on their HTTP calls.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
