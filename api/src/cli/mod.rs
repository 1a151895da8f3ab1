//! `facio` subcommands, one per file.

mod agent;
mod audit;
mod logging;
mod migrate;
mod onboard;
mod reviews;
mod serve;
mod sessions;
mod tenants;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Facio: a long-running, human-in-the-loop runtime for AI agents.
#[derive(Debug, Parser)]
#[command(name = "facio", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: $FACIO_CONFIG, else ~/.facio/config.json).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Agent workspace directory (overrides agents.defaults.workspace).
    #[arg(long, global = true, value_name = "DIR")]
    workspace: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the gateway (OpenAI-compatible API, health) on the configured address.
    Serve(serve::ServeArgs),
    /// Talk to the agent: one message with -m, or an interactive conversation.
    Agent(agent::AgentArgs),
    /// Write a commented starter config and a workspace (AGENTS.md, SOUL.md, ...).
    Onboard(onboard::OnboardArgs),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Inspect stored sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenants(tenants::TenantsCommand),
    /// Sign bearer tokens for a tenant and roles.
    #[command(subcommand)]
    Tokens(tenants::TokensCommand),
    /// Review what agents are waiting on (through a running gateway).
    #[command(subcommand)]
    Reviews(reviews::ReviewsCommand),
    /// Apply the store's pending migrations and say which (serve also does on start).
    Migrate(migrate::MigrateArgs),
}

/// Global options every command receives.
pub struct Globals {
    pub config: Option<PathBuf>,
    pub workspace: Option<PathBuf>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let globals = Globals {
        config: cli.config,
        workspace: cli.workspace,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(&globals, args).await,
            Command::Agent(args) => agent::run(&globals, args).await,
            Command::Onboard(args) => onboard::run(&globals, args),
            Command::Audit(command) => audit::run(&globals, command).await,
            Command::Sessions(command) => sessions::run(&globals, command).await,
            Command::Reviews(command) => reviews::run(&globals, command).await,
            Command::Tenants(command) => tenants::tenants(&globals, command).await,
            Command::Tokens(command) => tenants::tokens(&globals, command).await,
            Command::Migrate(args) => migrate::run(&globals, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The OS user running a command (`$USER`, else `$LOGNAME`), when either names one.
pub(crate) fn os_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|name| !name.trim().is_empty())
}

/// An error and its causes on one line, each cause once: a typed error that already
/// names its source in its message does not get it repeated after a colon.
pub(crate) fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:1: {source}")]
    struct Bind {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let text = io.to_string();
        let error = anyhow::Error::new(Bind { source: io }).context("starting the gateway");
        let line = super::one_line(&error);
        assert_eq!(line.matches(&text).count(), 1, "{line}");
        assert!(
            line.starts_with("starting the gateway: cannot listen on"),
            "{line}"
        );
        let plain = anyhow::anyhow!("outer").context("top");
        assert_eq!(super::one_line(&plain), "top: outer");
    }
}
