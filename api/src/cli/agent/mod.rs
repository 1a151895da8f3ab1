//! `facio agent`: one message (`-m`) or an interactive conversation, in-process,
//! streaming the answer to stdout and tool activity to stderr.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use facio::{Node, NodeOptions};
use facio_actors::{Origin, Runtime, StopReason, TurnEvent, TurnRequest};
use facio_services::config::Config;
use facio_services::domain::{SessionKey, TenantId};
use tokio::io::AsyncBufReadExt;

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Send this one message, print the answer and exit.
    #[arg(short, long)]
    message: Option<String>,
    /// Session to talk in; history is kept per session.
    #[arg(short, long, default_value = "cli:direct")]
    session: String,
}

pub async fn run(globals: &Globals, args: AgentArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    super::logging::init(&config.logging, Some("warn"));
    let session = SessionKey::new(args.session).context("--session")?;
    let node = Node::start(NodeOptions {
        config_path: globals.config.clone(),
        workspace: globals.workspace.clone(),
        recover: false,
        require_provider: true,
    })
    .await?;
    let runtime = node.runtime.clone();
    let code = match args.message {
        Some(message) => {
            if turn(&runtime, &session, message, Origin::Interactive).await? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => interactive(&runtime, &session).await?,
    };
    runtime.shutdown(Duration::from_secs(5)).await;
    Ok(code)
}

async fn interactive(runtime: &Runtime, session: &SessionKey) -> anyhow::Result<ExitCode> {
    eprintln!("facio agent — session {session}. Type a message; /exit or Ctrl-D to leave.");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("you> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines.next_line().await.context("reading stdin")? else {
            eprintln!();
            return Ok(ExitCode::SUCCESS);
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => return Ok(ExitCode::SUCCESS),
            _ => {
                turn(runtime, session, line.to_owned(), Origin::Interactive).await?;
            }
        }
    }
}

/// Runs one turn, printing as it goes. Returns whether it ended with an answer.
async fn turn(
    runtime: &Runtime,
    session: &SessionKey,
    input: String,
    origin: Origin,
) -> anyhow::Result<bool> {
    let (_, mut events) = runtime.submit(TurnRequest {
        tenant: TenantId::default_tenant(),
        session_key: session.clone(),
        input,
        origin,
        hooks: None,
    })?;
    let mut stdout = std::io::stdout();
    // Text streamed since the last tool call: the final answer, if the model streamed it.
    let mut streamed = String::new();
    while let Some(event) = events.recv().await {
        match event {
            TurnEvent::TextDelta(text) => {
                streamed.push_str(&text);
                let _ = write!(stdout, "{text}");
                let _ = stdout.flush();
            }
            TurnEvent::ToolStarted(call) => {
                if !streamed.is_empty() {
                    let _ = writeln!(stdout);
                    streamed.clear();
                }
                eprintln!("  → {} {}", call.name, one_line(&call.arguments, 160));
            }
            TurnEvent::ToolFinished(used) => {
                let mark = if used.ok { "✓" } else { "✗" };
                eprintln!("  {mark} {} {}", used.name, one_line(&used.output, 160));
            }
            TurnEvent::ReviewPending { review_id, title } => {
                eprintln!("  ⏸ waiting for a human: {title} (review {review_id})");
            }
            TurnEvent::Finished(summary) => {
                let content = summary.content.clone().unwrap_or_default();
                if streamed.trim() != content.trim() && !content.is_empty() {
                    let _ = write!(stdout, "{content}");
                }
                let _ = writeln!(stdout);
                let _ = stdout.flush();
                return Ok(match summary.stop {
                    StopReason::Answered
                    | StopReason::BudgetExhausted { .. }
                    | StopReason::TokenBudgetExhausted { .. } => true,
                    StopReason::AwaitingReview { .. } => {
                        eprintln!(
                            "the run continues once a reviewer decides (the gateway runs it)"
                        );
                        true
                    }
                    StopReason::ProviderFailed(reason) => {
                        eprintln!("error: the model provider failed: {reason}");
                        false
                    }
                    StopReason::Cancelled => {
                        eprintln!("error: the turn was cancelled");
                        false
                    }
                    StopReason::Interrupted => {
                        eprintln!("error: the turn was interrupted");
                        false
                    }
                    StopReason::ModelNotAllowed(model) => {
                        eprintln!("error: this tenant may not use the model {model}");
                        false
                    }
                    StopReason::Internal(reason) => {
                        eprintln!("error: {reason}");
                        false
                    }
                });
            }
        }
    }
    anyhow::bail!("the turn ended without reporting its outcome")
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &flat[..idx]),
        None => flat,
    }
}
