//! Running the tool calls of one model reply. Consecutive read-only calls run in
//! parallel; anything that writes runs alone, in the order the model asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use facio_services::domain::{ChatMessage, ToolCall};
use facio_services::store::{AuditEventKind, StepEvent, ToolCallStatus};
use facio_services::telemetry::{self, metrics, names};
use facio_services::tools::{
    CallGrant, RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput,
};
use futures::future::join_all;
use opentelemetry::KeyValue;
use ractor::rpc::CallResult;
use tracing::Instrument;

use facio_services::policy::{CallContext, Decision, Policy};
use facio_services::review::{
    DEFAULT_REVIEW_TIMEOUT_S, FreeformPayload, HitlTool, ReviewOutcome, ReviewPayload,
    ReviewRequest, request_from_tool_call, tool_result_for,
};
use facio_services::tenant_cache::PolicyLoadError;

use super::{HookDecision, Progress, Recorder, TurnError, TurnEvent, TurnTask};
use crate::gate::{GateRequest, open_gate};
use crate::tool_pool::ToolPoolMsg;

/// A call that passed the checks and may run.
struct Ready {
    call: ToolCall,
    tool: Arc<dyn Tool>,
    args: serde_json::Value,
    grant: CallGrant,
    /// A reviewer changed the arguments before approving (the model is told).
    edited: bool,
}

/// A call's fate before execution.
enum Prepared {
    Run(Ready),
    Refused(ToolCall, ToolError),
    /// A human must answer first (policy said ask, or a HITL tool asked).
    /// With the risk tier the policy used (none for a HITL tool's own question).
    Review(ToolCall, ReviewRequest, String, Option<RiskTier>),
    /// A HITL tool whose review is closed: its result is the human's answer.
    Answered(ToolCall, String),
}

pub(super) async fn run_calls(
    task: &TurnTask,
    recorder: &Recorder,
    progress: &mut Progress,
    calls: Vec<ToolCall>,
) -> Result<(), TurnError> {
    let policy = load_policy(task).await?;
    let mut batch: Vec<Ready> = Vec::new();
    for call in calls {
        // A stop (or a withdrawn review) ends the step here: the calls left get their
        // results from `settle_unanswered`, and none of them opens a review.
        task.check_stopped()?;
        match prepare(task, &policy, call).await? {
            Prepared::Run(ready) if is_read_only(task, &ready) => batch.push(ready),
            Prepared::Run(ready) => {
                flush(task, recorder, progress, std::mem::take(&mut batch)).await?;
                flush(task, recorder, progress, vec![ready]).await?;
            }
            Prepared::Review(call, request, reason, risk) => {
                flush(task, recorder, progress, std::mem::take(&mut batch)).await?;
                // A stop that came while this call was prepared must not end in a review.
                task.check_stopped()?;
                let span = tool_span(task, &call, "ask", risk);
                let review = Gated {
                    call,
                    request,
                    reason,
                    risk,
                };
                return Err(open_review(task, progress, review).instrument(span).await?);
            }
            Prepared::Answered(call, answer) => {
                flush(task, recorder, progress, std::mem::take(&mut batch)).await?;
                let result = Ok(ToolOutput::text(answer));
                let status = ToolCallStatus::Succeeded;
                record_unrun(task, recorder, progress, &call, result, status, false).await?;
            }
            Prepared::Refused(call, error) => {
                flush(task, recorder, progress, std::mem::take(&mut batch)).await?;
                let denied = error.kind == ToolErrorKind::Denied;
                let decision = if denied { "deny" } else { "refused" };
                let span = tool_span(
                    task,
                    &call,
                    decision,
                    task.deps.risk(&task.tenant, &call.name),
                );
                telemetry::set_error(&span, error.kind.as_str());
                metrics().tool_calls.add(
                    1,
                    &[
                        KeyValue::new(names::TOOL_NAME, call.name.clone()),
                        KeyValue::new(names::TOOL_OUTCOME, decision),
                        telemetry::metrics::tenant(&task.tenant),
                    ],
                );
                drop(span);
                let status = if denied {
                    ToolCallStatus::Denied
                } else {
                    ToolCallStatus::Failed
                };
                record_unrun(task, recorder, progress, &call, Err(error), status, false).await?;
            }
        }
    }
    flush(task, recorder, progress, batch).await
}

/// Gives every call of the step that has no result yet one saying the run was stopped
/// before it ran, so the history never holds a call without its result (providers
/// refuse such a history on the next turn).
pub(super) async fn settle_unanswered(
    task: &TurnTask,
    recorder: &Recorder,
    progress: &mut Progress,
) -> Result<(), TurnError> {
    let unanswered = facio_services::context::unanswered_tool_calls(
        progress.history.get(progress.start..).unwrap_or_default(),
    );
    if unanswered.is_empty() {
        return Ok(());
    }
    // Rows still `started` (a step cut short); an id a model reuses may also have a
    // finished row from an earlier step, which must not count.
    let on_record: Vec<String> = task
        .deps
        .store
        .tool_calls(&task.tenant, &task.run_id)
        .await?
        .into_iter()
        .filter(|c| c.status == ToolCallStatus::Started)
        .map(|c| c.call_id)
        .collect();
    for call in unanswered {
        let error = ToolError::new(
            ToolErrorKind::Cancelled,
            "the run was stopped before this call ran",
        );
        let started = on_record.contains(&call.id);
        let status = ToolCallStatus::Cancelled;
        record_unrun(task, recorder, progress, &call, Err(error), status, started).await?;
    }
    Ok(())
}

/// Records the result of a call that is not executed (refused, answered by a human,
/// or stopped): on record as started unless it already is, then settled at once.
async fn record_unrun(
    task: &TurnTask,
    recorder: &Recorder,
    progress: &mut Progress,
    call: &ToolCall,
    result: Result<ToolOutput, ToolError>,
    status: ToolCallStatus,
    already_started: bool,
) -> Result<(), TurnError> {
    if !already_started {
        recorder
            .tool_started(&call.id, &call.name, &call.arguments)
            .await?;
    }
    settle(
        task,
        recorder,
        progress,
        call,
        result,
        status,
        Duration::ZERO,
    )
    .await
}

fn is_read_only(task: &TurnTask, ready: &Ready) -> bool {
    task.deps.risk(&task.tenant, &ready.call.name) == Some(RiskTier::ReadOnly)
}

async fn prepare(task: &TurnTask, policy: &Policy, call: ToolCall) -> Result<Prepared, TurnError> {
    if HitlTool::from_name(&call.name).is_some() {
        return prepare_hitl(task, call).await;
    }
    let Some(tool) = task.deps.tool(&task.tenant, &call.name).await else {
        let offered = task.deps.mcp.offered(&task.tenant, &task.deps.specs).await;
        let known: Vec<&str> = offered.specs.iter().map(|s| s.name.as_str()).collect();
        let error = ToolError::new(
            ToolErrorKind::UnknownTool,
            format!("there is no tool named {:?}", call.name),
        )
        .with_hint(format!("available tools: {}", known.join(", ")));
        return Ok(Prepared::Refused(call, error));
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
            return Ok(Prepared::Refused(call, error));
        }
        Err(e) => {
            let error = ToolError::new(
                ToolErrorKind::InvalidArguments,
                format!("arguments are not valid JSON: {e}"),
            )
            .with_hint("send the arguments as one JSON object");
            return Ok(Prepared::Refused(call, error));
        }
    };
    if let Some(hooks) = &task.hooks
        && let HookDecision::Veto(reason) = hooks.before_tool_call(&call).await
    {
        let error = ToolError::new(
            ToolErrorKind::Denied,
            format!("the host refused this call: {reason}"),
        );
        return Ok(Prepared::Refused(call, error));
    }
    // A write to a file that makes programs run code (`.git/config`, hooks, rc files,
    // build files) is infrastructure: an allowed `git status` must not run what the
    // agent just wrote there.
    let workspace = task.workspace()?;
    let patterns = allow_command_patterns(policy);
    let run_by = facio_services::tools::files_run_by(&patterns);
    let control =
        facio_services::tools::execution_control_writes(&call.name, &args, &workspace, &run_by);
    let tier = task
        .deps
        .risk(&task.tenant, &call.name)
        .unwrap_or(RiskTier::Infrastructure);
    let risk = if control.is_empty() {
        tier
    } else {
        tier.max(RiskTier::Infrastructure)
    };
    let answering = (call.name == facio_services::a2a_client::CALL_AGENT)
        .then(|| task.deps.a2a.answering(&task.tenant, &args))
        .flatten();
    let decision = match policy.decide(&CallContext {
        tool: &call.name,
        risk,
        args: &args,
        origin: task.origin.call_origin(),
    }) {
        Decision::Ask { .. } if !control.is_empty() => Decision::Ask {
            reason: format!(
                "{} writes {}, which makes programs run code (an allowed command such as \
                 `git status` would run what it holds), and no rule allows this write",
                call.name,
                control.join(", ")
            ),
        },
        // An allowed command line that would write such a file through `cp`, `mv`,
        // `tee`, `sed -i`, ... is not what an allow rule vouches for.
        run @ Decision::Run { .. } if call.name == "exec" && policy.settings.enabled => {
            let command = args.get("command").and_then(|c| c.as_str()).unwrap_or("");
            let written =
                facio_services::tools::command_writes_control_files(command, &workspace, &patterns);
            if written.is_empty() {
                run
            } else {
                Decision::Ask {
                    reason: format!(
                        "the command writes {}, which makes programs run code, and an allow \
                         rule does not vouch for that",
                        written.join(", ")
                    ),
                }
            }
        }
        // A call that answers a question another agent asked is a human's to confirm.
        Decision::Run { .. } | Decision::Ask { .. } if answering.is_some() => Decision::Ask {
            reason: answering.unwrap_or_default(),
        },
        // What changes the runtime's own MCP servers waits for a human, whatever rule
        // or switch would let it run.
        Decision::Run { .. } if call.name == facio_services::mcp::MANAGE_MCP => Decision::Ask {
            reason: "manage_mcp changes this workspace's MCP servers; a human approves every \
                     such change"
                .to_owned(),
        },
        other => other,
    };
    // Short of a deny rule, a human who already answered for this very call (its gate,
    // or an "in doubt" check after a crash) decides it, whatever the tier says now.
    // Only a resumed run can hold such an answer: the lookup stays off fresh turns.
    let reviewed = match decision {
        Decision::Deny { .. } => None,
        _ if !task.answered_call(&call.id) => None,
        _ => task
            .deps
            .store
            .review_for_call(&task.tenant, &task.run_id, &call.id)
            .await?
            .and_then(|r| bound_outcome(r, &call, &args)),
    };
    if let Some(outcome) = reviewed {
        let approved = matches!(&outcome, ReviewOutcome::Decided { response, .. }
            if response.get("selectedOption").and_then(|v| v.as_str()) == Some("approve"));
        if !approved {
            return Ok(Prepared::Refused(call, refusal(&outcome)));
        }
        let grant = CallGrant {
            human_approved: true,
            network: true,
            by_rule: false,
        };
        let edited = match &outcome {
            ReviewOutcome::Decided { response, .. } => response.get("editedArguments").cloned(),
            _ => None,
        };
        let Some(edited) = edited else {
            return Ok(Prepared::Run(Ready {
                call,
                tool,
                args,
                grant,
                edited: false,
            }));
        };
        // Approved with edits: the call runs with the reviewer's arguments, and a deny
        // rule still holds against them.
        let denied = policy.decide(&CallContext {
            tool: &call.name,
            risk,
            args: &edited,
            origin: task.origin.call_origin(),
        });
        if let Decision::Deny { reason, .. } = denied {
            let error = ToolError::new(
                ToolErrorKind::Denied,
                format!("the policy refused the reviewer's edited call: {reason}"),
            );
            return Ok(Prepared::Refused(call, error));
        }
        let call = ToolCall {
            arguments: edited.to_string(),
            ..call
        };
        return Ok(Prepared::Run(Ready {
            call,
            tool,
            args: edited,
            grant,
            edited: true,
        }));
    }
    match decision {
        Decision::Run {
            network, by_rule, ..
        } => Ok(Prepared::Run(Ready {
            call,
            tool,
            args,
            grant: CallGrant {
                human_approved: false,
                network,
                by_rule,
            },
            edited: false,
        })),
        Decision::Deny { reason, .. } => Ok(Prepared::Refused(
            call,
            ToolError::new(
                ToolErrorKind::Denied,
                format!("the policy refused this call: {reason}"),
            )
            .with_hint("this action is not allowed; do not retry it with other arguments"),
        )),
        Decision::Ask { reason } => {
            let reason = match readable_credentials(task, &call).await? {
                Some(files) => format!("{reason}. {files}"),
                None => reason,
            };
            let request = approval_request(&call, &args, &reason, policy.review_timeout_s);
            Ok(Prepared::Review(call, request, reason, Some(risk)))
        }
    }
}

/// A review's outcome, only when the review showed exactly this call: the same tool
/// and the same arguments. Anything else (a row for another call that shares the id)
/// answers nothing, and the call asks a human afresh.
fn bound_outcome(
    review: facio_services::store::ReviewRecord,
    call: &ToolCall,
    args: &serde_json::Value,
) -> Option<ReviewOutcome> {
    let shown = review.context.get("arguments");
    if review.tool != call.name || shown != Some(args) {
        tracing::warn!(
            review = %review.id,
            call = %call.id,
            "a stored answer was for a different call; it is not applied"
        );
        return None;
    }
    review.outcome
}

/// The command patterns of the policy's allow rules: the workspace files they run by
/// name are trusted as they are, so writing one needs a review.
fn allow_command_patterns(policy: &Policy) -> Vec<&str> {
    policy
        .rules
        .iter()
        .filter(|r| r.action == facio_services::policy::RuleAction::Allow)
        .filter_map(|r| r.params.as_ref()?.get("command")?.as_str())
        .collect()
}

/// For an `exec` the reviewer is about to approve: which workspace files hold stored
/// credentials, since an approved command can read them (the file tools cannot).
async fn readable_credentials(
    task: &TurnTask,
    call: &ToolCall,
) -> Result<Option<String>, TurnError> {
    if call.name != "exec" {
        return Ok(None);
    }
    let secrets = task.secrets().await?;
    if secrets.is_empty() {
        return Ok(None);
    }
    let workspace = task.workspace()?;
    let files = tokio::task::spawn_blocking(move || secrets.files_with_credentials(&workspace))
        .await
        .unwrap_or_default();
    if files.is_empty() {
        return Ok(None);
    }
    let mut keys: Vec<&str> = files
        .iter()
        .flat_map(|f| f.keys.iter().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).take(10).collect();
    Ok(Some(format!(
        "This command can read files that contain {} ({})",
        keys.join(", "),
        paths.join(", ")
    )))
}

/// The tenant's effective policy, from the tenant cache.
async fn load_policy(task: &TurnTask) -> Result<Arc<Policy>, TurnError> {
    let cache = &task.deps.tenants;
    match cache
        .policy(
            task.deps.store.as_ref(),
            &task.tenant,
            &task.deps.config.policy,
        )
        .await
    {
        Ok(policy) => Ok(policy),
        Err(PolicyLoadError::Store(e)) => Err(e.into()),
        Err(e @ PolicyLoadError::Unreadable(_)) => Err(TurnError::Stopped(
            super::StopReason::Internal(e.to_string()),
        )),
    }
}

/// The approval a gated call asks for: what would run, and why it needs a human.
fn approval_request(
    call: &ToolCall,
    args: &serde_json::Value,
    reason: &str,
    timeout_s: Option<u64>,
) -> ReviewRequest {
    let shown = serde_json::to_string_pretty(args).unwrap_or_else(|_| call.arguments.clone());
    let subject = args
        .get("command")
        .or_else(|| args.get("url"))
        .and_then(|v| v.as_str())
        .map(|s| super::record::clip(s, 80))
        .unwrap_or_default();
    let title = if subject.is_empty() {
        format!("Allow {}?", call.name)
    } else {
        format!("Allow {}: {subject}?", call.name)
    };
    // The arguments cannot close the block they are shown in.
    let fence = facio_services::review::fence_for(&shown);
    let description = format!(
        "The agent wants to call `{}`. {reason}.\n\n{fence}json\n{shown}\n{fence}",
        call.name
    );
    let fallback = || ReviewRequest {
        title: title.clone(),
        description: Some(description.clone()),
        payload: ReviewPayload::Freeform(FreeformPayload {}),
        timeout_s: DEFAULT_REVIEW_TIMEOUT_S,
    };
    request_from_tool_call(
        HitlTool::AskApproval.name(),
        &serde_json::json!({
            "title": title,
            "description": description,
            "allowComment": true,
            "timeoutS": timeout_s.map(|t| t.clamp(1, facio_services::review::MAX_REVIEW_TIMEOUT_S)),
        }),
    )
    .unwrap_or_else(|_| fallback())
}

/// What the model reads when a human said no, or nobody answered in time.
fn refusal(outcome: &ReviewOutcome) -> ToolError {
    match outcome {
        ReviewOutcome::Decided {
            reviewer,
            comment,
            response,
        } => {
            let who = reviewer.as_deref().unwrap_or("a reviewer");
            // An approval's comment travels in its response (Placet's shape).
            let note = comment
                .as_deref()
                .or_else(|| response.get("comment").and_then(|c| c.as_str()));
            let why = note.map(|c| format!(": {c}")).unwrap_or_default();
            ToolError::new(
                ToolErrorKind::Denied,
                format!("{who} rejected this call{why}"),
            )
            .with_hint("do not retry it; ask the user how to proceed")
        }
        ReviewOutcome::TimedOut => ToolError::new(
            ToolErrorKind::Denied,
            "nobody reviewed this call before its review timed out, so it was not run",
        ),
        ReviewOutcome::Cancelled => ToolError::new(
            ToolErrorKind::Cancelled,
            "the review of this call was withdrawn",
        ),
    }
}

/// A HITL tool call: open its review, or hand back the answer once it is closed.
async fn prepare_hitl(task: &TurnTask, call: ToolCall) -> Result<Prepared, TurnError> {
    let args = serde_json::from_str::<serde_json::Value>(if call.arguments.trim().is_empty() {
        "{}"
    } else {
        &call.arguments
    })
    .unwrap_or(serde_json::Value::Null);
    let request = match request_from_tool_call(&call.name, &args) {
        Ok(request) => request,
        Err(e) => return Ok(Prepared::Refused(call, ToolError::from(e))),
    };
    // Only a resumed run can hold the human's answer (see `prepare`).
    let answered = if task.answered_call(&call.id) {
        task.deps
            .store
            .review_for_call(&task.tenant, &task.run_id, &call.id)
            .await?
            .and_then(|r| bound_outcome(r, &call, &call.arguments_value()))
    } else {
        None
    };
    Ok(match answered {
        Some(outcome) => Prepared::Answered(call, tool_result_for(&outcome)),
        None => Prepared::Review(
            call,
            request,
            "the agent asked for human input".into(),
            None,
        ),
    })
}

/// Opens the review and ends the turn's task: the run waits in the store.
/// A call on its way to a human.
struct Gated {
    call: ToolCall,
    request: ReviewRequest,
    reason: String,
    risk: Option<RiskTier>,
}

/// One step of the run before the review, as the reviewer sees it: what was said,
/// which tools were called with what, and what they answered. The call under review
/// (`reviewed`) is left out: the card shows its arguments once, on their own.
fn recent_step(message: &ChatMessage, reviewed: &str) -> Option<serde_json::Value> {
    let clip = |text: &str| super::record::clip(text, 500);
    let mut step = serde_json::json!({"role": message.role});
    if let Some(content) = message.content.as_deref().filter(|c| !c.is_empty()) {
        step["content"] = clip(content).into();
    }
    let calls: Vec<serde_json::Value> = message
        .tool_calls
        .iter()
        .filter(|c| c.id != reviewed)
        .map(|c| serde_json::json!({"name": c.name, "arguments": clip(&c.arguments)}))
        .collect();
    if !calls.is_empty() {
        step["toolCalls"] = calls.into();
    }
    if let Some(name) = &message.name {
        step["name"] = name.clone().into();
    }
    (step.get("content").is_some() || step.get("toolCalls").is_some()).then_some(step)
}

async fn open_review(
    task: &TurnTask,
    progress: &Progress,
    gated: Gated,
) -> Result<TurnError, TurnError> {
    let Gated {
        call,
        request,
        reason,
        risk,
    } = gated;
    let recent: Vec<serde_json::Value> = progress
        .history
        .iter()
        .rev()
        .filter_map(|m| recent_step(m, &call.id))
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let arguments = call.arguments_value();
    let title = request.title.clone();
    let review_id = open_gate(
        &task.deps,
        GateRequest {
            tenant: task.tenant.clone(),
            session_key: task.key.clone(),
            run_id: task.run_id.clone(),
            epoch: task.epoch,
            call_id: call.id.clone(),
            tool: call.name.clone(),
            origin: task.origin.as_str().to_owned(),
            request,
            context: serde_json::json!({"arguments": arguments, "reason": reason, "risk": risk,
                "recentMessages": recent}),
        },
    )
    .await?;
    if let Some(events) = &task.events {
        let _ = events
            .send(TurnEvent::ReviewPending {
                review_id: review_id.clone(),
                title,
            })
            .await;
    }
    Ok(TurnError::Stopped(super::StopReason::AwaitingReview {
        review_id,
    }))
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
        let decision = if ready.grant.human_approved {
            "approved"
        } else if ready.grant.by_rule {
            "allow-rule"
        } else {
            "allow"
        };
        let risk = task.deps.risk(&task.tenant, &ready.call.name);
        let span = tool_span(task, &ready.call, decision, risk);
        let executed = execute(task, ready).instrument(span.clone()).await;
        observe_tool(task, &span, &ready.call, &executed, started.elapsed());
        let result = executed.map(|out| {
            if ready.edited {
                ToolOutput::text(format!(
                    "[a reviewer edited the arguments before approving; the call ran with {}]\n{}",
                    ready.call.arguments, out.content
                ))
            } else {
                out
            }
        });
        (result, started.elapsed())
    });
    let batch_started = Instant::now();
    let results = join_all(runs).await;
    progress.tool_time += batch_started.elapsed();
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

/// The `execute_tool {tool}` span of one call, with the policy's decision and the
/// tool's risk tier (the arguments only with content capture on, redacted).
fn tool_span(
    task: &TurnTask,
    call: &ToolCall,
    decision: &'static str,
    risk: Option<RiskTier>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "execute_tool",
        otel.name = %format!("execute_tool {}", call.name),
        otel.kind = "internal",
    );
    if !telemetry::tracing_on() {
        return span;
    }
    telemetry::set(&span, names::OPERATION, "execute_tool");
    telemetry::set(&span, names::TOOL_NAME, call.name.clone());
    telemetry::set(&span, names::TOOL_CALL_ID, call.id.clone());
    telemetry::set(&span, names::TOOL_TYPE, "function");
    telemetry::set(&span, names::POLICY_DECISION, decision);
    if let Some(risk) = risk {
        telemetry::set(&span, names::RISK_TIER, risk.as_str());
    }
    if telemetry::capture_content() {
        telemetry::set(
            &span,
            names::TOOL_ARGUMENTS,
            telemetry::content(&task.redact(call.arguments.clone())),
        );
    }
    span
}

/// Records a finished call on its span and in the tool metrics.
fn observe_tool(
    task: &TurnTask,
    span: &tracing::Span,
    call: &ToolCall,
    result: &Result<ToolOutput, ToolError>,
    elapsed: Duration,
) {
    let tool = KeyValue::new(names::TOOL_NAME, call.name.clone());
    let outcome = match result {
        Ok(out) => {
            if telemetry::tracing_on() && telemetry::capture_content() {
                telemetry::set(
                    span,
                    names::TOOL_RESULT,
                    telemetry::content(&task.redact(out.content.clone())),
                );
            }
            "ok"
        }
        Err(e) => {
            telemetry::set_error(span, e.kind.as_str());
            metrics().tool_errors.add(
                1,
                &[
                    tool.clone(),
                    KeyValue::new(names::ERROR_TYPE, e.kind.as_str()),
                    telemetry::metrics::tenant(&task.tenant),
                ],
            );
            "error"
        }
    };
    let m = metrics();
    m.tool_duration.record(
        elapsed.as_secs_f64(),
        &[
            tool.clone(),
            KeyValue::new(names::OPERATION, "execute_tool"),
            telemetry::metrics::tenant(&task.tenant),
        ],
    );
    m.tool_calls.add(
        1,
        &[
            tool,
            KeyValue::new(names::TOOL_OUTCOME, outcome),
            telemetry::metrics::tenant(&task.tenant),
        ],
    );
}

async fn execute(task: &TurnTask, ready: &Ready) -> Result<ToolOutput, ToolError> {
    let workspace = match task.workspace() {
        Ok(workspace) => workspace,
        Err(e) => return Err(ToolError::new(ToolErrorKind::Failed, e.to_string())),
    };
    let secrets = match task.secrets().await {
        Ok(secrets) => secrets,
        Err(e) => return Err(ToolError::new(ToolErrorKind::Failed, e.to_string())),
    };
    let mut tools = task.deps.config.tools.clone();
    // A command an allow rule let through cannot see the files the runtime wrote
    // credentials into (an allowed `head -c 4 db.env` would read a value piece by
    // piece): they look empty to it.
    if ready.call.name == "exec" && ready.grant.by_rule && !secrets.is_empty() {
        let (listed, root) = (secrets.clone(), workspace.clone());
        let files = tokio::task::spawn_blocking(move || listed.files_with_credentials(&root))
            .await
            .unwrap_or_default();
        for file in files {
            if let Ok(path) = workspace.resolve(&file.path) {
                tools.exec.hide_paths.push(path);
            }
        }
    }
    let records: Arc<dyn facio_services::tools::RecordSource> = Arc::new(TenantRecords {
        store: task.deps.store.clone(),
        tenant: task.tenant.clone(),
        session: task.key.clone(),
    });
    let ctx = ToolContext {
        workspace,
        config: Arc::new(tools),
        cancel: task.cancel.child_token(),
        secrets,
        grant: ready.grant,
        records: Some(records),
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
    // Nothing a tool returns reaches the store, the audit log or the model unredacted.
    let output = task.redact(output);
    let named = facio_services::vault::placeholder_keys(&call.arguments);
    // A call refused before it ran (denied, stopped, or its arguments refused, as a
    // credential used outside its scope is) read no credential.
    let refused_arguments = matches!(&result, Err(e) if e.kind == ToolErrorKind::InvalidArguments);
    let ran =
        !matches!(status, ToolCallStatus::Denied | ToolCallStatus::Cancelled) && !refused_arguments;
    let mut events = Vec::with_capacity(2);
    if !named.is_empty() && ran {
        events.push(StepEvent::new(
            AuditEventKind::CredentialRead,
            serde_json::json!({"keys": named, "tool": call.name, "callId": call.id}),
        ));
    }
    let kind = if status == ToolCallStatus::Denied {
        AuditEventKind::ToolDenied
    } else {
        AuditEventKind::ToolCall
    };
    events.push(StepEvent::new(
        kind,
        serde_json::json!({
            "callId": call.id,
            "tool": call.name,
            "arguments": recorder.clip(&call.arguments),
            "status": status.as_str(),
            "result": recorder.clip(&output),
            "durationMs": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }),
    ));
    let message = ChatMessage::tool_result(call, output.clone());
    // One step: the call's row, its result message and its events, so a crash never
    // leaves a finished call without the result the model reads.
    recorder
        .tool_finished(&call.id, status, &output, &message, events)
        .await?;
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

/// A turn's own records for `read_logs`: its session's audit events and the node's
/// log records about its session; never another session's (a tenant's users share a
/// tenant, not their conversations) nor another tenant's.
struct TenantRecords {
    store: Arc<dyn facio_services::store::Store>,
    tenant: facio_services::domain::TenantId,
    session: facio_services::domain::SessionKey,
}

impl std::fmt::Debug for TenantRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRecords")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl facio_services::tools::RecordSource for TenantRecords {
    async fn audit(
        &self,
        filter: &facio_services::store::AuditFilter,
    ) -> Result<Vec<facio_services::store::AuditEvent>, String> {
        let mut filter = filter.clone();
        filter.session_key = Some(self.session.clone());
        self.store
            .list_audit(&self.tenant, &filter)
            .await
            .map_err(|e| e.to_string())
    }

    fn logs(&self) -> Vec<facio_services::logs::LogRecord> {
        facio_services::logs::of_session(self.tenant.as_str(), self.session.as_str())
    }
}
