//! `facio` subcommands, one per file.

mod agent;
mod audit;
mod logging;
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
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
