//! One turn of a session: accept input, then alternate model calls and tool calls
//! until the model answers, the iteration budget runs out, or the turn is stopped.
//! Each step is written to the store before the next one starts, so a turn that is
//! interrupted leaves a history the next turn can continue from.

mod budget;
mod credentials;
mod events;
mod hooks;
mod record;
mod tools;

use std::sync::Arc;
use std::time::{Duration, Instant};

use facio_services::context;
use facio_services::domain::{ChatMessage, RunId, SessionKey, TenantId, Usage};
use facio_services::providers::{ChatRequest, ChatResponse, StreamDelta};
use facio_services::store::{
    AuditEventKind, ModelSpend, ReviewFilter, ReviewStatus, RunStatus, StoreError,
};
use facio_services::telemetry::{self, names};
use opentelemetry::KeyValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use facio_services::tools::Workspace;

use crate::context::NodeContext;

pub use budget::BudgetScope;
pub use events::{Origin, StopReason, ToolUse, TurnEvent, TurnSummary};
pub use hooks::{HookDecision, TurnHooks};
use record::Recorder;
pub(crate) use record::{queued_as, queued_step, record_queued, started_as};

/// A turn ready to run as a task.
pub(crate) struct TurnTask {
    pub deps: Arc<NodeContext>,
    pub tenant: TenantId,
    pub key: SessionKey,
    /// The epoch of the session lease its actor holds: every step is fenced by it.
    pub epoch: facio_services::store::Epoch,
    pub run_id: RunId,
    pub input: String,
    pub origin: Origin,
    pub hooks: Option<Arc<dyn TurnHooks>>,
    /// The model this turn calls; `None`: `agents.defaults.model`.
    pub model: Option<String>,
    pub events: Option<mpsc::Sender<TurnEvent>>,
    /// Cancelled by the caller (`Cancel`).
    pub cancel: CancellationToken,
    /// Cancelled when the node stops waiting for running turns.
    pub shutdown: CancellationToken,
    /// Continue a run that waited for a review (its input is already stored).
    pub resume: bool,
    /// With `resume`: the run was left `running` by an owner that is gone, and goes
    /// on from its last recorded step (it never waited for a review).
    pub continues: bool,
    /// The tenant's workspace, opened on first use and kept for the rest of the turn.
    pub workspace: std::sync::OnceLock<Workspace>,
    /// The tenant's settings (model allow list, budgets), read on first use.
    pub settings: tokio::sync::OnceCell<facio_services::domain::TenantSettings>,
    /// The tenant's credentials, opened from the vault on the first tool call.
    pub secrets: tokio::sync::OnceCell<Arc<facio_services::vault::Secrets>>,
    /// Calls that were waiting when this run resumed: only these may take a human's
    /// answer from the store, each once (a model may reuse a call id in a later step,
    /// and an old approval must not pass a new call).
    pub awaiting_answer: std::sync::Mutex<Vec<String>>,
    /// Told once the accept step has committed (see [`crate::session::TurnInput`]).
    pub accepted: Option<tokio::sync::oneshot::Sender<Result<(), NotAccepted>>>,
}

/// Why a turn's accept step did not commit (nothing of the turn was stored).
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotAccepted {
    /// The store's write queue is full: try again shortly.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Failed(String),
    /// The node is draining and gave the session up: it goes to another node.
    #[error("the node is shutting down")]
    Draining,
}

/// What the task reports to its session actor.
pub(crate) struct TurnOutcome {
    pub summary: TurnSummary,
    /// The session's history after the turn, when it is known to match the store.
    pub history: Option<Vec<ChatMessage>>,
}

/// A turn's running totals.
struct Progress {
    history: Vec<ChatMessage>,
    /// Index in `history` of this turn's user message.
    start: usize,
    usage: Usage,
    model_calls: u32,
    tools_used: Vec<ToolUse>,
    model: String,
    content: Option<String>,
    /// What this turn's own model calls used (a resumed run's `usage` also counts
    /// the calls before it waited).
    turn_usage: Usage,
    /// Time spent waiting on the model and in tool batches (for the overhead).
    model_time: Duration,
    tool_time: Duration,
    finish_reasons: Vec<facio_services::providers::FinishReason>,
}

#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("turn stopped: {0:?}")]
    Stopped(StopReason),
}

/// Gives every call of one model step a fresh id of the runtime's. The model's own
/// ids are not trusted: two calls sharing one (or having none) would share one review
/// and one stored answer.
/// The agent's name on its spans (`gen_ai.agent.name`).
const AGENT_NAME: &str = "facio";

fn assign_call_ids(calls: &mut [facio_services::domain::ToolCall]) {
    for call in calls {
        call.id = format!("call_{}", uuid::Uuid::now_v7().simple());
    }
}

impl TurnTask {
    /// Runs the turn to its end and reports the outcome; never panics the caller.
    pub async fn run(mut self, cached: Option<Vec<ChatMessage>>) -> TurnOutcome {
        let accepted = self.accepted.take();
        // A resumed run calls the model it was accepted with, never the default instead.
        let requested = if self.resume && self.model.is_none() {
            record::requested_model(self.deps.store.as_ref(), &self.tenant, &self.run_id).await
        } else {
            Ok(self.model.take())
        };
        let requested = requested.map(|model| self.model = model);
        let recorder = Recorder::new(&self);
        let mut progress = Progress {
            history: Vec::new(),
            start: 0,
            usage: Usage::default(),
            model_calls: 0,
            tools_used: Vec::new(),
            model: self
                .model
                .clone()
                .unwrap_or_else(|| self.deps.config.agents.defaults.model.clone()),
            content: None,
            turn_usage: Usage::default(),
            model_time: Duration::ZERO,
            tool_time: Duration::ZERO,
            finish_reasons: Vec::new(),
        };
        let began = Instant::now();
        let span = tracing::Span::current();
        if telemetry::tracing_on() {
            telemetry::set(&span, names::OPERATION, "invoke_agent");
            telemetry::set(&span, names::AGENT_NAME, AGENT_NAME);
            telemetry::set(&span, names::REQUEST_MODEL, progress.model.clone());
            // The provider the turn's model resolves to (named, or chosen by the model).
            let defaults = &self.deps.config.agents.defaults;
            let model = self.model.as_deref().unwrap_or(&defaults.model);
            if let Ok((provider, _)) = self
                .deps
                .providers
                .resolve(model, defaults.provider.as_deref())
            {
                telemetry::set(&span, names::PROVIDER, provider.name().to_owned());
            }
            telemetry::set(&span, names::RUN_RESUMED, self.resume);
        }
        let driven = match requested {
            Ok(()) => self.drive(&recorder, &mut progress, cached, accepted).await,
            Err(e) => Err(TurnError::Store(e)),
        };
        let stop = match driven {
            Ok(stop) => stop,
            Err(TurnError::Stopped(stop)) => {
                if let StopReason::AwaitingReview { review_id } = &stop {
                    progress.content = Some(format!(
                        "A human review is pending (review {review_id}, run {run}). The run continues \
                         once it is decided in the inbox (/inbox) or with POST \
                         /api/v1/reviews/{review_id}/decide; GET /api/v1/runs/{run} gives the final answer.",
                        run = self.run_id
                    ));
                }
                stop
            }
            Err(TurnError::Store(e @ StoreError::Fenced { .. })) => {
                StopReason::Fenced(e.to_string())
            }
            Err(TurnError::Store(e)) => StopReason::Internal(format!("the store failed: {e}")),
        };
        let stop = match stop {
            StopReason::Cancelled => {
                match tools::settle_unanswered(&self, &recorder, &mut progress).await {
                    Ok(()) => StopReason::Cancelled,
                    Err(e) => StopReason::Internal(format!("closing the stopped calls: {e}")),
                }
            }
            other => other,
        };
        let consistent = recorder.finish(&stop, &progress).await.is_ok()
            && !matches!(stop, StopReason::Internal(_) | StopReason::Fenced(_));
        self.observe_end(&span, &stop, &progress, began.elapsed());
        let summary = TurnSummary {
            run_id: self.run_id.clone(),
            session_key: self.key.clone(),
            stop,
            content: progress.content.clone(),
            usage: progress.usage,
            tools_used: progress.tools_used.clone(),
            messages: progress
                .history
                .get(progress.start..)
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            model: progress.model.clone(),
        };
        let _ = self.deps.notices.send(crate::context::Notice::RunChanged {
            tenant: self.tenant.clone(),
            run_id: self.run_id.clone(),
        });
        if let Some(events) = &self.events {
            // The caller may have gone away; the outcome is in the store either way.
            let _ = events
                .send(TurnEvent::Finished(Box::new(summary.clone())))
                .await;
        }
        TurnOutcome {
            summary,
            history: consistent.then_some(progress.history),
        }
    }

    /// The turn's end on its `invoke_agent` span and in the turn metrics.
    fn observe_end(
        &self,
        span: &tracing::Span,
        stop: &StopReason,
        progress: &Progress,
        elapsed: Duration,
    ) {
        if telemetry::tracing_on() {
            telemetry::set_usage(span, &progress.model, &progress.turn_usage);
            telemetry::set(span, names::TURN_STOP, stop.name());
            if !progress.finish_reasons.is_empty() {
                telemetry::set_finish_reasons(
                    span,
                    progress.finish_reasons.iter().map(|r| r.as_str()),
                );
            }
            if let StopReason::ProviderFailed(_)
            | StopReason::ModelNotAllowed(_)
            | StopReason::Internal(_) = stop
            {
                telemetry::set_error(span, stop.name());
            }
        }
        let m = telemetry::metrics();
        let tenant = telemetry::metrics::tenant(&self.tenant);
        let ended = KeyValue::new(names::TURN_STOP, stop.name());
        m.turn_duration
            .record(elapsed.as_secs_f64(), &[tenant.clone(), ended.clone()]);
        let overhead = elapsed
            .saturating_sub(progress.model_time)
            .saturating_sub(progress.tool_time);
        m.turn_overhead
            .record(overhead.as_secs_f64(), std::slice::from_ref(&tenant));
        if let StopReason::BudgetExhausted { .. } | StopReason::TokenBudgetExhausted { .. } = stop {
            m.budget_stops.add(1, &[tenant, ended]);
        }
    }

    async fn drive(
        &self,
        recorder: &Recorder,
        progress: &mut Progress,
        cached: Option<Vec<ChatMessage>>,
        accepted: Option<tokio::sync::oneshot::Sender<Result<(), NotAccepted>>>,
    ) -> Result<StopReason, TurnError> {
        if self.resume {
            self.load_resumed(progress).await?;
        } else {
            self.accept(recorder, progress, cached, accepted).await?;
        }
        self.turn_loop(recorder, progress).await
    }

    async fn accept(
        &self,
        recorder: &Recorder,
        progress: &mut Progress,
        cached: Option<Vec<ChatMessage>>,
        accepted: Option<tokio::sync::oneshot::Sender<Result<(), NotAccepted>>>,
    ) -> Result<(), TurnError> {
        // The caller is told how the accept step went, and only then acknowledged; it
        // may have gone away, and the turn goes on either way.
        let tell = |result: Result<(), NotAccepted>| {
            if let Some(accepted) = accepted {
                let _ = accepted.send(result);
            }
        };
        // A credential value typed into a message is redacted like one a tool printed:
        // it reaches neither the history, the audit log nor the model.
        let secrets = match self.secrets().await {
            Ok(secrets) => secrets,
            Err(e) => {
                tell(Err(NotAccepted::Failed(e.to_string())));
                return Err(e);
            }
        };
        let input = if secrets.is_empty() {
            self.input.clone()
        } else {
            secrets.redact(&self.input)
        };
        let user = ChatMessage::user(input);
        match recorder.accept(&user).await {
            Ok(()) => tell(Ok(())),
            Err(e) => {
                tell(Err(match &e {
                    StoreError::Busy(why) => NotAccepted::Busy(why.clone()),
                    other => NotAccepted::Failed(format!("the store failed: {other}")),
                }));
                return Err(e.into());
            }
        }
        progress.history = match cached {
            Some(mut history) => {
                history.push(user);
                history
            }
            None => self
                .deps
                .store
                .history(&self.tenant, &self.key)
                .await?
                .into_iter()
                .map(|m| m.message)
                .collect(),
        };
        progress.start = progress.history.len().saturating_sub(1);
        Ok(())
    }

    /// Loads a run that waited for a review: the history from the store, this run's
    /// part of it, and the model calls it already made.
    async fn load_resumed(&self, progress: &mut Progress) -> Result<(), TurnError> {
        let store = &self.deps.store;
        // A run taken over from a gone owner is still `running`: it goes on as it is,
        // its steps fenced by this owner's newer epoch.
        let from = if self.continues {
            RunStatus::Running
        } else {
            RunStatus::AwaitingReview
        };
        let moved = store
            .set_run_status(&self.tenant, &self.run_id, from, RunStatus::Running)
            .await?;
        if !moved {
            return Err(TurnError::Stopped(StopReason::Internal(format!(
                "run {} is not awaiting a review",
                self.run_id
            ))));
        }
        let stored = store.history(&self.tenant, &self.key).await?;
        progress.start = stored
            .iter()
            .position(|m| m.run_id.as_ref() == Some(&self.run_id))
            .unwrap_or(stored.len());
        progress.history = stored.into_iter().map(|m| m.message).collect();
        progress.model_calls = u32::try_from(
            progress.history[progress.start..]
                .iter()
                .filter(|m| m.role == facio_services::domain::Role::Assistant)
                .count(),
        )
        .unwrap_or(u32::MAX);
        // The run's totals are the whole run's: every model call it made before it
        // waited for a human counts, as it does for its token cap.
        for call in store.run_usage(&self.tenant, &self.run_id).await? {
            progress.usage += Usage {
                prompt_tokens: call.prompt_tokens,
                completion_tokens: call.completion_tokens,
                total_tokens: call.total_tokens,
            };
        }
        let waiting = context::unanswered_tool_calls(&progress.history[progress.start..]);
        if telemetry::tracing_on() {
            self.trace_waits(&waiting).await?;
        }
        if let Ok(mut awaiting) = self.awaiting_answer.lock() {
            *awaiting = waiting.into_iter().map(|call| call.id).collect();
        }
        // A review withdrawn by a stop ends the run: its calls get results saying so
        // (see `tools::settle_unanswered`) and the model is not asked again.
        let withdrawn = ReviewFilter {
            status: Some(ReviewStatus::Cancelled),
            run_id: Some(self.run_id.clone()),
            limit: Some(1),
            ..ReviewFilter::default()
        };
        if !store
            .list_reviews(&self.tenant, &withdrawn)
            .await?
            .is_empty()
        {
            self.cancel.cancel();
        }
        Ok(())
    }

    /// The human waits this resume follows: one span per review the waiting calls
    /// had, from its opening to its decision, in the trace of the call that asked,
    /// linked from this turn's span.
    async fn trace_waits(
        &self,
        waiting: &[facio_services::domain::ToolCall],
    ) -> Result<(), TurnError> {
        let filter = ReviewFilter {
            run_id: Some(self.run_id.clone()),
            ..ReviewFilter::default()
        };
        let reviews = self.deps.store.list_reviews(&self.tenant, &filter).await?;
        for review in reviews {
            let Some(decided) = review.decided_at else {
                continue;
            };
            if !waiting.iter().any(|call| call.id == review.call_id) {
                continue;
            }
            let kind = review.request.review_type().as_str();
            let waited = (decided - review.created_at).to_std().unwrap_or_default();
            let attributes = vec![
                KeyValue::new(names::REVIEW, review.id.to_string()),
                KeyValue::new(names::REVIEW_TYPE, kind),
                KeyValue::new(names::REVIEW_OUTCOME, crate::gate::review_outcome(&review)),
                KeyValue::new(names::REVIEW_WAIT, waited.as_secs_f64()),
                KeyValue::new(names::TOOL_NAME, review.tool.clone()),
                KeyValue::new(names::TOOL_CALL_ID, review.call_id.clone()),
                KeyValue::new(names::TENANT, self.tenant.to_string()),
                KeyValue::new(names::RUN, self.run_id.to_string()),
            ];
            let parent = review
                .context
                .get("traceparent")
                .and_then(serde_json::Value::as_str);
            if let Some(context) = telemetry::past_span(
                format!("review {kind}"),
                parent,
                review.created_at.into(),
                decided.into(),
                attributes,
            ) {
                telemetry::link_current(context);
            }
        }
        Ok(())
    }

    /// Whether `call_id` was waiting for a human when this run resumed; true once.
    pub(super) fn answered_call(&self, call_id: &str) -> bool {
        let Ok(mut awaiting) = self.awaiting_answer.lock() else {
            return false;
        };
        match awaiting.iter().position(|id| id == call_id) {
            Some(index) => {
                awaiting.swap_remove(index);
                true
            }
            None => false,
        }
    }

    async fn turn_loop(
        &self,
        recorder: &Recorder,
        progress: &mut Progress,
    ) -> Result<StopReason, TurnError> {
        let defaults = &self.deps.config.agents.defaults;
        loop {
            self.check_stopped()?;
            let pending = context::unanswered_tool_calls(&progress.history[progress.start..]);
            if !pending.is_empty() {
                tools::run_calls(self, recorder, progress, pending).await?;
                continue;
            }
            if progress.model_calls >= defaults.max_tool_iterations {
                let limit = defaults.max_tool_iterations;
                let text = format!(
                    "I stopped because this turn reached its limit of {limit} model calls before \
                     finishing. What was done so far is saved; send another message to continue."
                );
                let message = ChatMessage::assistant(text.clone());
                recorder
                    .note(
                        &message,
                        AuditEventKind::BudgetExhausted,
                        serde_json::json!({ "limit": limit }),
                    )
                    .await?;
                progress.history.push(message);
                progress.content = Some(text);
                return Ok(StopReason::BudgetExhausted { limit });
            }

            if let Some(stop) = self.check_budgets(recorder, progress).await? {
                return Ok(stop);
            }

            let (mut response, spend, data) = self.call_model(recorder, progress).await?;
            // The runtime names every call itself before anything decides on it: a
            // model's ids may repeat or be missing, and a human's answer is bound to
            // the runtime's id (and the exact call shown), never to the model's.
            assign_call_ids(&mut response.tool_calls);
            let message = ChatMessage::assistant_tool_calls(
                response.content.clone(),
                response.tool_calls.clone(),
            );
            // One step: what the call spent, the reply and its `model_call` event.
            recorder.model_reply(spend, &message, data).await?;
            progress.history.push(message);
            if let Some(hooks) = &self.hooks {
                hooks.after_model_call(&response).await;
            }
            if response.tool_calls.is_empty() {
                progress.content = response.content;
                return Ok(StopReason::Answered);
            }
        }
    }

    /// The tenant's workspace (see [`Config::tenant_workspace_dir`]).
    fn workspace(&self) -> Result<Workspace, TurnError> {
        if let Some(workspace) = self.workspace.get() {
            return Ok(workspace.clone());
        }
        if self.tenant == TenantId::default_tenant() {
            return Ok(self.deps.workspace.clone());
        }
        let root = self.deps.config.tenant_workspace_dir(&self.tenant);
        let workspace = Workspace::new(root, self.deps.workspace.restricted()).map_err(|e| {
            TurnError::Stopped(StopReason::Internal(format!("the tenant's workspace: {e}")))
        })?;
        Ok(self.workspace.get_or_init(|| workspace).clone())
    }

    fn check_stopped(&self) -> Result<(), TurnError> {
        if self.cancel.is_cancelled() {
            return Err(TurnError::Stopped(StopReason::Cancelled));
        }
        if self.shutdown.is_cancelled() {
            return Err(TurnError::Stopped(StopReason::Interrupted));
        }
        Ok(())
    }

    async fn call_model(
        &self,
        recorder: &Recorder,
        progress: &mut Progress,
    ) -> Result<(ChatResponse, ModelSpend, serde_json::Value), TurnError> {
        let defaults = &self.deps.config.agents.defaults;
        let (provider, model) = match self.deps.providers.resolve(
            self.model.as_deref().unwrap_or(&defaults.model),
            defaults.provider.as_deref(),
        ) {
            Ok(found) => found,
            Err(e) => {
                let reason = e.to_string();
                recorder
                    .audit(
                        AuditEventKind::Error,
                        serde_json::json!({ "stage": "resolve_provider", "error": reason }),
                    )
                    .await?;
                return Err(TurnError::Stopped(StopReason::ProviderFailed(reason)));
            }
        };
        if !self.settings().await?.allows_model(&model) {
            recorder
                .audit(
                    AuditEventKind::Error,
                    serde_json::json!({ "stage": "model_allow_list", "model": model }),
                )
                .await?;
            return Err(TurnError::Stopped(StopReason::ModelNotAllowed(model)));
        }
        let specs = self
            .deps
            .mcp
            .offered(&self.tenant, &self.deps.specs)
            .await
            .specs;
        // It reads the workspace's files and folders: off the async threads.
        let root = self.workspace()?.root().to_path_buf();
        let iterations = defaults.max_tool_iterations;
        let deps = self.deps.clone();
        let today = chrono::Utc::now().date_naive();
        let system =
            tokio::task::spawn_blocking(move || deps.prompts.get(&root, iterations, today))
                .await
                .map_err(|e| {
                    TurnError::Stopped(StopReason::Internal(format!(
                        "assembling the system prompt: {e}"
                    )))
                })?;
        let messages = context::assemble(
            system.to_string(),
            &progress.history,
            specs.tokens(),
            defaults.context_window_tokens as usize,
            defaults.max_tokens as usize,
        );
        let request = ChatRequest {
            model: model.clone(),
            messages,
            tools: specs,
            max_tokens: Some(defaults.max_tokens),
            temperature: Some(defaults.temperature),
        };
        if let Some(hooks) = &self.hooks {
            hooks.before_model_call(&request).await;
        }

        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("chat {model}"),
            otel.kind = "client",
        );
        if telemetry::tracing_on() {
            telemetry::set(&span, names::OPERATION, "chat");
            telemetry::set(&span, names::PROVIDER, provider.name().to_owned());
            telemetry::set(&span, names::REQUEST_MODEL, model.clone());
            telemetry::set(
                &span,
                names::REQUEST_MAX_TOKENS,
                i64::from(defaults.max_tokens),
            );
            telemetry::set(
                &span,
                names::REQUEST_TEMPERATURE,
                f64::from(defaults.temperature),
            );
            telemetry::set(&span, names::CONVERSATION, self.key.to_string());
        }
        if telemetry::tracing_on() && telemetry::capture_content() {
            let input = serde_json::to_string(&request.messages).unwrap_or_default();
            telemetry::set(
                &span,
                names::INPUT_MESSAGES,
                telemetry::content(&self.redact(input)),
            );
        }
        let started = Instant::now();
        let result = tokio::select! {
            result = self.stream_model(provider.as_ref(), &request).instrument(span.clone()) => result,
            () = self.cancel.cancelled() => return Err(TurnError::Stopped(StopReason::Cancelled)),
            () = self.shutdown.cancelled() => return Err(TurnError::Stopped(StopReason::Interrupted)),
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress.model_calls += 1;
        progress.model_time += started.elapsed();
        self.observe_call(&span, provider.name(), &model, &result, started.elapsed());
        match result {
            Ok(response) => {
                progress.usage += response.usage;
                progress.turn_usage += response.usage;
                progress.finish_reasons.push(response.finish_reason);
                progress.model = response.model.clone();
                let pricing = &self.deps.config.pricing;
                let priced = if pricing.contains_key(&response.model) {
                    &response.model
                } else {
                    &model
                };
                let cost = facio_services::config::cost_micros(pricing, priced, &response.usage);
                #[allow(clippy::cast_precision_loss)]
                let dollars = cost as f64 / 1_000_000.0;
                if dollars > 0.0 {
                    telemetry::metrics().model_cost.add(
                        dollars,
                        &[
                            telemetry::metrics::tenant(&self.tenant),
                            KeyValue::new(names::REQUEST_MODEL, priced.clone()),
                        ],
                    );
                }
                let spend = ModelSpend {
                    model: priced.clone(),
                    usage: response.usage,
                    cost_micros: cost,
                };
                let data = serde_json::json!({
                    "provider": provider.name(),
                    "model": response.model,
                    "ok": true,
                    "latencyMs": latency_ms,
                    "finishReason": response.finish_reason,
                    "usage": response.usage,
                    "toolCalls": response.tool_calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                });
                Ok((response, spend, data))
            }
            Err(e) => {
                let reason = e.to_string();
                recorder
                    .audit(
                        AuditEventKind::ModelCall,
                        serde_json::json!({
                            "provider": provider.name(),
                            "model": model,
                            "ok": false,
                            "latencyMs": latency_ms,
                            "error": reason,
                        }),
                    )
                    .await?;
                Err(TurnError::Stopped(StopReason::ProviderFailed(reason)))
            }
        }
    }

    /// A finished model call on its `chat` span and in the GenAI client metrics.
    fn observe_call(
        &self,
        span: &tracing::Span,
        provider: &str,
        model: &str,
        result: &Result<ChatResponse, facio_services::providers::ProviderError>,
        elapsed: Duration,
    ) {
        let mut attributes = vec![
            KeyValue::new(names::OPERATION, "chat"),
            KeyValue::new(names::PROVIDER, provider.to_owned()),
            KeyValue::new(names::REQUEST_MODEL, model.to_owned()),
            telemetry::metrics::tenant(&self.tenant),
        ];
        let m = telemetry::metrics();
        match result {
            Ok(response) => {
                let usage = response.usage;
                if telemetry::tracing_on() {
                    telemetry::set_usage(span, &response.model, &usage);
                    telemetry::set_finish_reasons(span, [response.finish_reason.as_str()]);
                }
                if telemetry::tracing_on() && telemetry::capture_content() {
                    let output = serde_json::json!([{
                        "role": "assistant",
                        "content": response.content,
                        "toolCalls": response.tool_calls,
                    }])
                    .to_string();
                    telemetry::set(
                        span,
                        names::OUTPUT_MESSAGES,
                        telemetry::content(&self.redact(output)),
                    );
                }
                attributes.push(KeyValue::new(names::RESPONSE_MODEL, response.model.clone()));
                for (kind, count) in [
                    ("input", usage.prompt_tokens),
                    ("output", usage.completion_tokens),
                ] {
                    let mut with_type = attributes.clone();
                    with_type.push(KeyValue::new(names::TOKEN_TYPE, kind));
                    m.token_usage.record(count, &with_type);
                }
            }
            Err(e) => {
                telemetry::set_error(span, &e.kind());
                attributes.push(KeyValue::new(names::ERROR_TYPE, e.kind()));
            }
        }
        m.operation_duration
            .record(elapsed.as_secs_f64(), &attributes);
    }

    /// Calls the provider, streaming text to the caller when one is listening.
    async fn stream_model(
        &self,
        provider: &dyn facio_services::providers::Provider,
        request: &ChatRequest,
    ) -> Result<ChatResponse, facio_services::providers::ProviderError> {
        let Some(events) = &self.events else {
            return provider.chat(request, None).await;
        };
        let (tx, mut rx) = mpsc::channel::<StreamDelta>(64);
        let forward = async {
            while let Some(StreamDelta::Text(text)) = rx.recv().await {
                let _ = events.send(TurnEvent::TextDelta(text)).await;
            }
        };
        let (result, ()) = tokio::join!(provider.chat(request, Some(tx)), forward);
        result
    }
}
