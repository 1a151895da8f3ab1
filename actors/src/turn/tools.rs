//! Running the tool calls of one model reply. Consecutive read-only calls run in
//! parallel; anything that writes runs alone, in the order the model asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use facio_services::domain::{ChatMessage, ToolCall};
use facio_services::store::{AuditEventKind, ToolCallStatus};
use facio_services::tools::{RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput};
use futures::future::join_all;
use ractor::rpc::CallResult;

use super::{HookDecision, Progress, Recorder, TurnError, TurnEvent, TurnTask};
use crate::tool_pool::ToolPoolMsg;

/// A call that passed the checks and may run.
struct Ready {
    call: ToolCall,
    tool: Arc<dyn Tool>,
    args: serde_json::Value,
}

/// A call's fate before execution.
enum Prepared {
    Run(Ready),
    Refused(ToolCall, ToolError),
}

pub(super) async fn run_calls(
    task: &TurnTask,
    recorder: &Recorder,
    progress: &mut Progress,
    calls: Vec<ToolCall>,
) -> Result<(), TurnError> {
    let mut batch: Vec<Ready> = Vec::new();
    for call in calls {
        match prepare(task, call).await {
            Prepared::Run(ready) if is_read_only(&ready) => batch.push(ready),
            Prepared::Run(ready) => {
                flush(task, recorder, progress, std::mem::take(&mut batch)).await?;
                flush(task, recorder, progress, vec![ready]).await?;
            }
            Prepared::Refused(call, error) => {
                flush(task, recorder, progress, std::mem::take(&mut batch)).await?;
                let status = if error.kind == ToolErrorKind::Denied {
                    ToolCallStatus::Denied
                } else {
                    ToolCallStatus::Failed
                };
                recorder
                    .tool_started(&call.id, &call.name, &call.arguments)
                    .await?;
                settle(
                    task,
                    recorder,
                    progress,
                    &call,
                    Err(error),
                    status,
                    Duration::ZERO,
                )
                .await?;
            }
        }
    }
    flush(task, recorder, progress, batch).await
}

fn is_read_only(ready: &Ready) -> bool {
    ready.tool.spec().risk == RiskTier::ReadOnly
}

async fn prepare(task: &TurnTask, call: ToolCall) -> Prepared {
    let Some(tool) = task.deps.tools.get(&call.name) else {
        let known: Vec<String> = task
            .deps
            .tools
            .specs()
            .into_iter()
            .map(|s| s.name)
            .collect();
        let error = ToolError::new(
            ToolErrorKind::UnknownTool,
            format!("there is no tool named {:?}", call.name),
        )
        .with_hint(format!("available tools: {}", known.join(", ")));
        return Prepared::Refused(call, error);
    };
    let raw = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    let args = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(args @ serde_json::Value::Object(_)) => args,
        Ok(_) => {
            let error = ToolError::new(
                ToolErrorKind::InvalidArguments,
                "arguments must be a JSON object",
            )
            .with_hint("pass the arguments as an object matching the tool's schema");
            return Prepared::Refused(call, error);
        }
        Err(e) => {
            let error = ToolError::new(
                ToolErrorKind::InvalidArguments,
                format!("arguments are not valid JSON: {e}"),
            )
            .with_hint("send the arguments as one JSON object");
            return Prepared::Refused(call, error);
        }
    };
    if let Some(hooks) = &task.hooks
        && let HookDecision::Veto(reason) = hooks.before_tool_call(&call).await
    {
        let error = ToolError::new(
            ToolErrorKind::Denied,
            format!("the host refused this call: {reason}"),
        );
        return Prepared::Refused(call, error);
    }
    Prepared::Run(Ready { call, tool, args })
}

/// Runs a batch (in parallel) and records each result in the order the model asked.
async fn flush(
    task: &TurnTask,
    recorder: &Recorder,
    progress: &mut Progress,
    batch: Vec<Ready>,
) -> Result<(), TurnError> {
    if batch.is_empty() {
        return Ok(());
    }
    for ready in &batch {
        task.check_stopped()?;
        // The call is on record as started before it can have any effect.
        recorder
            .tool_started(&ready.call.id, &ready.call.name, &ready.call.arguments)
            .await?;
        if let Some(events) = &task.events {
            let _ = events
                .send(TurnEvent::ToolStarted(ready.call.clone()))
                .await;
        }
    }
    let runs = batch.iter().map(|ready| async {
        let started = Instant::now();
        let result = execute(task, ready).await;
        (result, started.elapsed())
    });
    let results = join_all(runs).await;
    for (ready, (result, elapsed)) in batch.iter().zip(results) {
        let status = match &result {
            Ok(_) => ToolCallStatus::Succeeded,
            Err(_) => ToolCallStatus::Failed,
        };
        settle(
            task,
            recorder,
            progress,
            &ready.call,
            result,
            status,
            elapsed,
        )
        .await?;
    }
    Ok(())
}

async fn execute(task: &TurnTask, ready: &Ready) -> Result<ToolOutput, ToolError> {
    let ctx = ToolContext {
        workspace: task.deps.workspace.clone(),
        config: Arc::new(task.deps.config.tools.clone()),
        cancel: task.cancel.child_token(),
    };
    let timeout = Duration::from_secs(task.deps.config.tools.timeout_s.max(1));
    let Some(pool) = task.deps.refs.tools() else {
        return Err(ToolError::new(
            ToolErrorKind::Failed,
            "the tool pool is not running; the call did not run",
        ));
    };
    let sent = pool
        .call(
            |reply| ToolPoolMsg::Execute {
                tool: ready.tool.clone(),
                ctx,
                args: ready.args.clone(),
                timeout,
                reply,
            },
            None,
        )
        .await;
    match sent {
        Ok(CallResult::Success(result)) => result,
        Ok(CallResult::Timeout | CallResult::SenderError) | Err(_) => Err(ToolError::new(
            ToolErrorKind::Failed,
            "the tool pool is not available; the call did not run",
        )),
    }
}

/// Records a finished call everywhere it belongs and tells the caller.
async fn settle(
    task: &TurnTask,
    recorder: &Recorder,
    progress: &mut Progress,
    call: &ToolCall,
    result: Result<ToolOutput, ToolError>,
    status: ToolCallStatus,
    elapsed: Duration,
) -> Result<(), TurnError> {
    let (ok, output) = match &result {
        Ok(out) => (true, out.content.clone()),
        Err(e) => (false, e.to_model_content()),
    };
    recorder.tool_finished(&call.id, status, &output).await?;
    let kind = if status == ToolCallStatus::Denied {
        AuditEventKind::ToolDenied
    } else {
        AuditEventKind::ToolCall
    };
    recorder
        .audit(
            kind,
            serde_json::json!({
                "callId": call.id,
                "tool": call.name,
                "arguments": recorder.clip(&call.arguments),
                "status": status.as_str(),
                "result": recorder.clip(&output),
                "durationMs": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            }),
        )
        .await?;
    let message = ChatMessage::tool_result(call, output.clone());
    recorder.append(std::slice::from_ref(&message)).await?;
    progress.history.push(message);
    let used = super::ToolUse {
        call_id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
        ok,
        output,
    };
    if let Some(hooks) = &task.hooks {
        hooks.after_tool_call(call, &used).await;
    }
    if let Some(events) = &task.events {
        let _ = events.send(TurnEvent::ToolFinished(used.clone())).await;
    }
    progress.tools_used.push(used);
    Ok(())
}
