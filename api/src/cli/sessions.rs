//! `facio sessions list|show`.

use std::process::ExitCode;

use facio_services::config::Config;
use facio_services::domain::{Role, SessionKey, TenantId};

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// Sessions, most recently active first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One session's full history.
    Show { key: String },
}

pub async fn run(globals: &Globals, command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    let store = facio::open_configured_store(&config).await?;
    let tenant = TenantId::default_tenant();
    match command {
        SessionsCommand::List { limit } => {
            let sessions = store.list_sessions(&tenant, limit).await?;
            if sessions.is_empty() {
                println!("no sessions yet");
            }
            for s in sessions {
                println!(
                    "{:<32} {:>5} messages  updated {}",
                    s.key,
                    s.message_count,
                    s.updated_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
        }
        SessionsCommand::Show { key } => {
            let key = SessionKey::new(key)?;
            if store.get_session(&tenant, &key).await?.is_none() {
                anyhow::bail!("no session named {key}");
            }
            for stored in store.history(&tenant, &key).await? {
                let m = stored.message;
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::Tool => "tool",
                };
                if let Some(content) = &m.content {
                    println!("[{}] {role}: {content}", stored.seq);
                }
                for call in &m.tool_calls {
                    println!(
                        "[{}] {role} → {}({})",
                        stored.seq, call.name, call.arguments
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
