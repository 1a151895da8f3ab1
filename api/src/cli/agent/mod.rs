//! `facio agent`: one message (`-m`) or an interactive conversation, in-process,
//! streaming the answer to stdout and tool activity to stderr. A call that needs a
//! human is asked right here, at the terminal, and the turn goes on to its answer.

mod review;
mod terminal;

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use facio::{Node, NodeOptions};
use facio_actors::{
    Origin, ReviewDecision, ReviewError, Runtime, StopReason, TurnEvent, TurnRequest,
};
use facio_services::config::Config;
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::review::{ReviewId, ReviewPayload};
use facio_services::store::{ReviewFilter, ReviewRecord, ReviewStatus, RunRecord, RunStatus};
use facio_services::store::{ToolCallRecord, ToolCallStatus};
use serde_json::Value;

use super::Globals;
use terminal::Terminal;

/// The exit code when the turn stopped at a review nobody decided here.
const AWAITING_REVIEW: u8 = 3;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
When a tool call needs a human, the review is asked here: the tool, its arguments and \
the policy's reason are shown, the answer is typed (approve/reject, a choice, form \
fields, a text), and the turn goes on to its answer.

Exit codes: 0 the turn answered; 1 it failed; 3 it stopped at a review that was not \
decided here (--no-input, stdin not a terminal, or input ended): the review id and how \
to decide it are printed.")]
pub struct AgentArgs {
    /// Send this one message, print the answer and exit.
    #[arg(short, long)]
    message: Option<String>,
    /// Session to talk in; history is kept per session.
    #[arg(short, long, default_value = "cli:direct")]
    session: String,
    /// Never ask at the terminal: a call that needs a human ends the command with
    /// exit code 3, printing the review id and how to decide it (also when stdin is
    /// not a terminal).
    #[arg(long)]
    no_input: bool,
}

pub async fn run(globals: &Globals, args: AgentArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    super::logging::init(&config.logging, Some("warn"), None);
    let session = SessionKey::new(args.session).context("--session")?;
    let node = Node::start(NodeOptions {
        config_path: globals.config.clone(),
        workspace: globals.workspace.clone(),
        recover: false,
        require_provider: true,
    })
    .await?;
    let runtime = node.runtime.clone();
    let asks = if args.no_input {
        Asks::Never("--no-input")
    } else if !std::io::stdin().is_terminal() {
        Asks::Never("stdin is not a terminal")
    } else {
        Asks::Here
    };
    let mut agent = Agent {
        runtime: &runtime,
        tenant: TenantId::default_tenant(),
        session,
        asks,
        terminal: Terminal::new(),
        flags: Flags::new(globals),
    };
    let code = match args.message {
        Some(message) => agent.turn(message).await?.code(),
        None => agent.interactive().await?,
    };
    runtime.shutdown(Duration::from_secs(5)).await;
    Ok(code)
}

/// Whether reviews are asked at this terminal, and if not, why.
#[derive(Clone, Copy)]
enum Asks {
    Here,
    Never(&'static str),
}

/// How a turn ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Answered,
    Failed,
    /// Stopped at a review nobody decided here.
    AwaitingReview,
}

impl Ended {
    fn code(self) -> ExitCode {
        match self {
            Self::Answered => ExitCode::SUCCESS,
            Self::Failed => ExitCode::FAILURE,
            Self::AwaitingReview => ExitCode::from(AWAITING_REVIEW),
        }
    }
}

/// Where a resumed run stopped next.
enum Next {
    Review(ReviewId),
    Ended(RunRecord),
}

struct Agent<'a> {
    runtime: &'a Runtime,
    tenant: TenantId,
    session: SessionKey,
    asks: Asks,
    terminal: Terminal,
    /// `--config`/`--workspace` as given, for the commands printed to the user.
    flags: Flags,
}

impl Agent<'_> {
    async fn interactive(&mut self) -> anyhow::Result<ExitCode> {
        eprintln!(
            "facio agent — session {}. Type a message; /exit or Ctrl-D to leave.",
            self.session
        );
        loop {
            let Some(line) = self.terminal.line("you> ").await? else {
                eprintln!();
                return Ok(ExitCode::SUCCESS);
            };
            let line = line.trim();
            match line {
                "" => continue,
                "/exit" | "/quit" => return Ok(ExitCode::SUCCESS),
                _ => {
                    // The session takes no new turn while its run waits for a human.
                    if self.turn(line.to_owned()).await? == Ended::AwaitingReview {
                        return Ok(Ended::AwaitingReview.code());
                    }
                }
            }
        }
    }

    /// Runs one turn to its answer, printing as it goes, and asks its reviews.
    async fn turn(&mut self, input: String) -> anyhow::Result<Ended> {
        let (run_id, mut events) = self
            .runtime
            .submit(TurnRequest {
                tenant: self.tenant.clone(),
                session_key: self.session.clone(),
                input,
                origin: Origin::Interactive,
                hooks: None,
                model: None,
            })
            .await?;
        let mut stdout = std::io::stdout();
        // Text streamed since the last tool call: the final answer, if the model streamed it.
        let mut streamed = String::new();
        // Calls whose outcome is already on the terminal.
        let mut shown = HashSet::new();
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
                    shown.insert(used.call_id);
                }
                TurnEvent::ReviewPending { .. } => {}
                TurnEvent::Finished(summary) => {
                    if let StopReason::AwaitingReview { review_id } = summary.stop {
                        // The summary's text tells an API caller where to decide; here
                        // the review is asked instead.
                        if !streamed.is_empty() {
                            let _ = writeln!(stdout);
                        }
                        return self.reviews(&run_id, review_id, shown).await;
                    }
                    let content = summary.content.clone().unwrap_or_default();
                    if streamed.trim() != content.trim() && !content.is_empty() {
                        let _ = write!(stdout, "{content}");
                    }
                    let _ = writeln!(stdout);
                    let _ = stdout.flush();
                    return Ok(match summary.stop {
                        StopReason::Answered
                        | StopReason::BudgetExhausted { .. }
                        | StopReason::TokenBudgetExhausted { .. } => Ended::Answered,
                        StopReason::AwaitingReview { .. } => Ended::AwaitingReview,
                        StopReason::ProviderFailed(reason) => {
                            eprintln!("error: the model provider failed: {reason}");
                            Ended::Failed
                        }
                        StopReason::Cancelled => {
                            eprintln!("error: the turn was cancelled");
                            Ended::Failed
                        }
                        StopReason::Interrupted => {
                            eprintln!("error: the turn was interrupted");
                            Ended::Failed
                        }
                        StopReason::ModelNotAllowed(model) => {
                            eprintln!("error: this tenant may not use the model {model}");
                            Ended::Failed
                        }
                        StopReason::Internal(reason) => {
                            eprintln!("error: {reason}");
                            Ended::Failed
                        }
                        StopReason::Fenced(reason) => {
                            eprintln!("error: another process took over this session: {reason}");
                            Ended::Failed
                        }
                    });
                }
            }
        }
        anyhow::bail!("the turn ended without reporting its outcome")
    }

    /// Asks each review the run stops at, until it ends, and prints its answer.
    async fn reviews(
        &mut self,
        run_id: &RunId,
        first: ReviewId,
        mut shown: HashSet<String>,
    ) -> anyhow::Result<Ended> {
        let store = self.runtime.store().clone();
        let mut review_id = first;
        loop {
            let review = store
                .get_review(&self.tenant, &review_id)
                .await?
                .with_context(|| format!("review {review_id} is not in the store"))?;
            if let Asks::Never(why) = self.asks {
                self.how_to_decide(&review, why);
                return Ok(Ended::AwaitingReview);
            }
            // Subscribed before deciding, so the resumed run's end cannot be missed.
            let mut notices = self.runtime.notices();
            if review.status == ReviewStatus::Pending {
                let reviewer = match reviewer() {
                    Ok(reviewer) => reviewer,
                    Err(e) => {
                        self.how_to_decide(&review, "no reviewer name");
                        return Err(e);
                    }
                };
                review::show(&review);
                if !self.decide(&review, reviewer).await? {
                    eprintln!();
                    self.how_to_decide(&review, "input ended");
                    return Ok(Ended::AwaitingReview);
                }
            }
            let next = loop {
                let run = store
                    .get_run(&self.tenant, run_id)
                    .await?
                    .with_context(|| format!("run {run_id} is not in the store"))?;
                match run.status {
                    RunStatus::Queued | RunStatus::Running => {}
                    RunStatus::AwaitingReview => {
                        if let Some(next) = self.pending_review(run_id).await? {
                            break Next::Review(next);
                        }
                    }
                    _ => break Next::Ended(run),
                }
                // Each notice is a change to look at; the timeout is only a re-check
                // should notices be dropped under load.
                if let Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) =
                    tokio::time::timeout(Duration::from_secs(5), notices.recv()).await
                {
                    anyhow::bail!("the runtime stopped while run {run_id} was running");
                }
            };
            self.show_calls(run_id, &mut shown).await?;
            match next {
                Next::Review(next) => review_id = next,
                Next::Ended(run) => return Ok(print_end(&run)),
            }
        }
    }

    /// Takes the answer from the terminal and decides the review with it. False when
    /// input ended before an answer.
    async fn decide(&mut self, review: &ReviewRecord, reviewer: String) -> anyhow::Result<bool> {
        loop {
            let Some(response) = review::ask(&mut self.terminal, review).await? else {
                return Ok(false);
            };
            let decision = ReviewDecision {
                response: response.clone(),
                reviewer: Some(reviewer.clone()),
                comment: None,
                edited_arguments: None,
            };
            match self
                .runtime
                .decide_review(&self.tenant, &review.id, decision)
                .await
            {
                Ok(_) => {
                    eprintln!("  → {} by {reviewer}", decided(&response));
                    return Ok(true);
                }
                Err(ReviewError::Invalid(e)) => eprintln!("  ✗ {e}; try again"),
                Err(ReviewError::Closed(record)) => {
                    eprintln!(
                        "  review {} was already {} elsewhere",
                        record.id,
                        record.status.as_str()
                    );
                    return Ok(true);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The oldest review of the run still waiting for a human.
    async fn pending_review(&self, run_id: &RunId) -> anyhow::Result<Option<ReviewId>> {
        let filter = ReviewFilter {
            status: Some(ReviewStatus::Pending),
            run_id: Some(run_id.clone()),
            ..ReviewFilter::default()
        };
        let reviews = self
            .runtime
            .store()
            .list_reviews(&self.tenant, &filter)
            .await?;
        Ok(reviews.last().map(|r| r.id.clone()))
    }

    /// Tool calls the resumed run made, as the streaming turn shows them.
    async fn show_calls(&self, run_id: &RunId, shown: &mut HashSet<String>) -> anyhow::Result<()> {
        let calls = self
            .runtime
            .store()
            .tool_calls(&self.tenant, run_id)
            .await?;
        for call in calls {
            if call.status == ToolCallStatus::Started || shown.contains(&call.call_id) {
                continue;
            }
            eprintln!("  {}", call_line(&call));
            shown.insert(call.call_id);
        }
        Ok(())
    }

    /// What to do about a review this command did not decide: it waits until it is
    /// decided through a running gateway.
    fn how_to_decide(&self, review: &ReviewRecord, why: &str) {
        let id = &review.id;
        // The gateway must run the tools in this workspace; the other commands only
        // need to find the gateway.
        let Flags {
            config: flags,
            both: serve_flags,
        } = &self.flags;
        let config = self.runtime.config();
        eprintln!(
            "⏸ the run waits for review {id} ({}): {}",
            review.request.review_type().as_str(),
            review.request.title.trim()
        );
        eprintln!(
            "  not asked here ({why}); nothing runs it until it is decided while the gateway runs:"
        );
        eprintln!("    1. start the gateway: facio serve{serve_flags}");
        let has_token = config.api.management_token.is_some()
            || std::env::var("FACIO_MANAGEMENT_TOKEN").is_ok_and(|t| !t.is_empty());
        if !has_token {
            eprintln!(
                "       (the inbox and `facio reviews` need a management token, and none is set: \
                 set api.managementToken or $FACIO_MANAGEMENT_TOKEN; `facio onboard` writes one)"
            );
        }
        let inbox = if config.api.port == 0 {
            "/inbox on the address `facio serve` prints".to_owned()
        } else {
            format!("http://{}:{}/inbox", config.api.host, config.api.port)
        };
        let command = match &review.request.payload {
            ReviewPayload::Approval(_) => format!(
                "facio reviews approve {id}{flags}  (or: facio reviews reject {id} --comment WHY{flags})"
            ),
            ReviewPayload::Selection(_) => {
                format!("facio reviews answer {id} '{{\"selectedIds\":[\"ID\"]}}'{flags}")
            }
            ReviewPayload::TextInput(_) => {
                format!("facio reviews answer {id} '{{\"text\":\"...\"}}'{flags}")
            }
            ReviewPayload::Form(_) => {
                format!("facio reviews answer {id} '{{\"FIELD\":\"VALUE\"}}'{flags}")
            }
            ReviewPayload::Freeform(_) => {
                format!("facio reviews answer {id} '<response JSON>'{flags}")
            }
        };
        eprintln!("    2. decide it in the inbox ({inbox}) or with: {command}");
        eprintln!(
            "  the gateway then resumes the run; `facio sessions show {}{flags}` shows its answer.",
            self.session
        );
    }
}

/// The run's end as a turn that never stopped prints it: the answer on stdout.
fn print_end(run: &RunRecord) -> Ended {
    let content = run.content.clone().unwrap_or_default();
    match run.status {
        RunStatus::Completed => {
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "{content}");
            let _ = stdout.flush();
            Ended::Answered
        }
        status => {
            let detail = if content.is_empty() {
                String::new()
            } else {
                format!(": {}", one_line(&content, 400))
            };
            eprintln!("error: the run ended {}{detail}", status.as_str());
            Ended::Failed
        }
    }
}

/// A finished call as one line: ✓ or ✗, the tool, its result.
fn call_line(call: &ToolCallRecord) -> String {
    let mark = if call.status == ToolCallStatus::Succeeded {
        "✓"
    } else {
        "✗"
    };
    let result = call.result.as_deref().unwrap_or_default();
    format!("{mark} {} {}", call.tool, one_line(result, 160))
}

/// What was decided, in a few words.
fn decided(response: &Value) -> String {
    match response.get("selectedOption").and_then(Value::as_str) {
        Some("approve") => "approved".to_owned(),
        Some("reject") => "rejected".to_owned(),
        Some(option) => format!("chose {option}"),
        None => "answered".to_owned(),
    }
}

/// Who is recorded as deciding: `$USER`, else `$LOGNAME`; with neither the decision
/// is refused rather than made under a made-up name.
fn reviewer() -> anyhow::Result<String> {
    super::os_user().ok_or_else(|| {
        anyhow::anyhow!(
            "say who decides: set $USER (or $LOGNAME) to the name recorded as the reviewer"
        )
    })
}

/// ` --config PATH` and ` --config PATH --workspace DIR`, as this command was given
/// them.
struct Flags {
    config: String,
    both: String,
}

impl Flags {
    fn new(globals: &Globals) -> Flags {
        let quoted = |path: &PathBuf| {
            let text = path.display().to_string();
            if text.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
                format!("'{}'", text.replace('\'', r"'\''"))
            } else {
                text
            }
        };
        let config = globals
            .config
            .as_ref()
            .map(|c| format!(" --config {}", quoted(c)))
            .unwrap_or_default();
        let workspace = globals
            .workspace
            .as_ref()
            .map(|w| format!(" --workspace {}", quoted(w)))
            .unwrap_or_default();
        Flags {
            both: format!("{config}{workspace}"),
            config,
        }
    }
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
