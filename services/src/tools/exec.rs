//! `exec`: a shell command in the workspace, with a timeout, deny patterns, a
//! hardened environment and head+tail truncated output.
//!
//! By default (`tools.exec.sandbox` `auto`) the command runs in an OS sandbox
//! ([`sandbox`]): its writes stay in the workspace and a private temp dir, it has no
//! network unless the call was granted it, and no process it starts outlives the call
//! or the node. With the sandbox `off` it runs in its own process group, which is
//! killed when the call ends.

mod env;
mod sandbox;

use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncReadExt;

use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};
use crate::config::ExecSandbox;

pub use sandbox::{NamespaceMode, SandboxError, SandboxStatus, require_sandbox, sandbox_status};

/// Bytes of each stream kept in memory; the model sees far less after truncation.
const CAPTURE_LIMIT: usize = 4 * 1024 * 1024;
/// How long the end of a call waits for its processes to be gone before killing the
/// keeper outright.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub struct ExecTool;

/// `tools.exec.denyPatterns`, compiled.
struct DenyPatterns {
    patterns: Vec<String>,
    /// One per pattern; `None`: it does not compile.
    compiled: Vec<Option<regex::Regex>>,
}

impl DenyPatterns {
    /// The first pattern `command` matches. Patterns are validated when the config
    /// loads; one that still fails to compile refuses everything rather than nothing.
    fn matched(&self, command: &str) -> Option<&str> {
        self.patterns
            .iter()
            .zip(&self.compiled)
            .find(|(_, regex)| regex.as_ref().is_none_or(|r| r.is_match(command)))
            .map(|(pattern, _)| pattern.as_str())
    }
}

/// The deny patterns compiled once per configuration, not per call: kept until a call
/// comes with other patterns (a reloaded or another runtime's config).
fn deny_patterns(patterns: &[String]) -> Arc<DenyPatterns> {
    static COMPILED: Mutex<Option<Arc<DenyPatterns>>> = Mutex::new(None);
    let mut kept = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(compiled) = kept.as_ref()
        && compiled.patterns == patterns
    {
        return compiled.clone();
    }
    let compiled = Arc::new(DenyPatterns {
        patterns: patterns.to_vec(),
        compiled: patterns.iter().map(|p| regex::Regex::new(p).ok()).collect(),
    });
    *kept = Some(compiled.clone());
    compiled
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    command: String,
    timeout_s: Option<u64>,
}

#[async_trait]
impl Tool for ExecTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "exec".into(),
            description: "Run a shell command (sh -c) in the workspace directory and return its \
                exit code and output. Long output keeps its beginning and end. Commands are \
                stopped at the timeout, and background processes do not survive the call. \
                Usually sandboxed: writes outside the workspace and $TMPDIR fail, and there \
                is no network unless the call was approved for it."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command"},
                    "timeout_s": {"type": "integer", "minimum": 1, "description": "Seconds before the command is stopped (capped by configuration)"}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
            risk: RiskTier::SystemEffect,
        }
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: Args = parse_args(args)?;
        let exec = &ctx.config.exec;
        if let Some(pattern) = deny_patterns(&exec.deny_patterns).matched(&args.command) {
            return Err(ToolError::new(
                ToolErrorKind::Denied,
                format!("the command matches the deny pattern {pattern:?}"),
            )
            .with_hint("this command is not allowed here; find another way or ask the user"));
        }
        // Credentials reach the command only through its environment: placeholders
        // become variable references, and exposed credentials are always set.
        let (script, secret_env) = ctx
            .secrets
            .for_command_as(&args.command, !ctx.grant.by_rule)
            .map_err(|e| {
                ToolError::new(ToolErrorKind::InvalidArguments, e.to_string())
                    .with_hint("use only credentials that exist; ask the user to add a missing one")
            })?;
        let limit = exec.timeout_s.max(1);
        let timeout = Duration::from_secs(args.timeout_s.unwrap_or(limit).clamp(1, limit));
        let root = ctx.workspace.root();
        let mut jail = match exec.sandbox {
            ExecSandbox::Off => None,
            ExecSandbox::Auto | ExecSandbox::On => Some(
                sandbox::Jail::prepare(root, &ctx.config, ctx.grant.network).map_err(|e| {
                    ToolError::new(ToolErrorKind::Failed, e.to_string())
                        .with_hint("commands cannot run on this node; tell the user")
                })?,
            ),
        };
        let tmp = jail
            .as_ref()
            .map_or_else(std::env::temp_dir, |j| j.tmp_dir().to_owned());
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(&script)
            .current_dir(root)
            .env_clear()
            .envs(env::command_env(root, &tmp))
            .envs(secret_env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(jail) = &jail {
            jail.confine(&mut command)
                .map_err(|e| ToolError::new(ToolErrorKind::Failed, e.to_string()))?;
        }
        let spawned = command.spawn();
        if let Some(jail) = &mut jail {
            jail.spawned();
        }
        let mut child = spawned.map_err(|e| {
            let what = if jail.is_some() {
                "sh in its sandbox"
            } else {
                "sh"
            };
            ToolError::new(ToolErrorKind::Failed, format!("cannot start {what}: {e}"))
        })?;
        let group = child.id();
        let stdout = child.stdout.take().map(|s| tokio::spawn(capture(s)));
        let stderr = child.stderr.take().map(|s| tokio::spawn(capture(s)));

        let ended = tokio::select! {
            status = child.wait() => Ok(status),
            () = tokio::time::sleep(timeout) => Err(ToolError::new(
                ToolErrorKind::Timeout,
                format!("the command did not finish within {}s and was stopped", timeout.as_secs()),
            ).with_hint("run long work in smaller steps or pass a larger timeout_s")),
            () = ctx.cancel.cancelled() => Err(ToolError::new(ToolErrorKind::Cancelled, "the turn was cancelled")),
        };
        match &mut jail {
            // The keeper exits once nothing of the namespace is left.
            Some(jail) => jail.stop(),
            None => kill_group(group),
        }
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        let status = ended?.map_err(|e| ToolError::new(ToolErrorKind::Failed, e.to_string()))?;
        let out = join(stdout).await;
        let err = join(stderr).await;
        drop(jail);

        let code = status
            .code()
            .map_or_else(|| "killed by a signal".to_owned(), |c| c.to_string());
        let mut text = format!("exit code: {code}\n");
        if !out.is_empty() {
            text.push_str(&format!("--- stdout ---\n{out}"));
        }
        if !err.is_empty() {
            text.push_str(&format!("\n--- stderr ---\n{err}"));
        }
        // Redacted before it is cut, so a cut cannot split a secret past the redactor.
        Ok(ToolOutput::text(head_and_tail(
            &ctx.secrets.redact(&text),
            exec.max_output_chars,
        )))
    }
}

fn kill_group(group: Option<u32>) {
    let Some(pgid) = group.and_then(|g| libc::pid_t::try_from(g).ok()) else {
        return;
    };
    // SAFETY: killpg(2) on the process group this call created; ESRCH (already
    // gone) is expected and harmless.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

async fn capture(mut stream: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = CAPTURE_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

async fn join(task: Option<tokio::task::JoinHandle<Vec<u8>>>) -> String {
    match task {
        Some(task) => String::from_utf8_lossy(&task.await.unwrap_or_default()).into_owned(),
        None => String::new(),
    }
}

/// Keeps the first and last halves of `max` characters, saying how much was cut.
pub(crate) fn head_and_tail(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let half = max / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(total - half).collect();
    format!(
        "{head}\n... [{} characters omitted] ...\n{tail}",
        total - 2 * half
    )
}

#[cfg(test)]
mod tests;
