//! Writes a turn's steps to the store, each in one transaction with its audit events
//! (see [`facio_services::store::SessionLog`]).

use std::sync::Arc;

use facio_services::domain::ChatMessage;
use facio_services::store::{
    AcceptStep, AuditEventKind, AuditFilter, ModelReplyStep, ModelSpend, NewAuditEvent, NoteStep,
    QueuedStep, RunScope, StepEvent, Store, StoreError, ToolCallStatus, ToolFinishedStep,
    ToolStartedStep, TurnFinishedStep,
};

use super::{Origin, Progress, StopReason, TurnTask};

/// The store, bound to one run.
pub(super) struct Recorder {
    store: Arc<dyn Store>,
    scope: RunScope,
    origin: Origin,
    /// The model the caller asked for (`None`: the default), kept with the run.
    model: Option<String>,
    max_field_chars: usize,
}

impl Recorder {
    pub fn new(task: &TurnTask) -> Self {
        Self {
            store: task.deps.store.clone(),
            scope: RunScope {
                tenant: task.tenant.clone(),
                session_key: task.key.clone(),
                run_id: task.run_id.clone(),
                actor: "agent".to_owned(),
                epoch: task.epoch,
            },
            origin: task.origin,
            model: task.model.clone(),
            max_field_chars: task.deps.config.audit.max_field_chars,
        }
    }

    /// Records that the turn was accepted, in one transaction: the session, the run,
    /// the user's message and the `turn_started` event, each with the message as given
    /// (already redacted). The event names the model the caller asked for, so a run
    /// resumed after a review, even after a restart, calls it again (see
    /// [`requested_model`]).
    pub async fn accept(&self, user: &ChatMessage) -> Result<(), StoreError> {
        let input = user.content.as_deref().unwrap_or_default();
        let mut data = serde_json::json!({
            "origin": self.origin.as_str(),
            "input": self.clip(input),
        });
        if let Some(model) = &self.model {
            data[REQUESTED_MODEL] = serde_json::json!(model);
        }
        let event = StepEvent::new(AuditEventKind::TurnStarted, data);
        self.store
            .record_accept(
                &self.scope,
                AcceptStep {
                    input: input.to_owned(),
                    user: user.clone(),
                    event,
                },
            )
            .await
    }

    /// Records a model reply in one transaction: what it spent, the assistant
    /// message and the `model_call` event.
    pub async fn model_reply(
        &self,
        spend: ModelSpend,
        message: &ChatMessage,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.store
            .record_model_reply(
                &self.scope,
                ModelReplyStep {
                    spend,
                    message: message.clone(),
                    event: StepEvent::new(AuditEventKind::ModelCall, data),
                },
            )
            .await
    }

    /// Records a message of the runtime's own with its event, in one transaction.
    pub async fn note(
        &self,
        message: &ChatMessage,
        kind: AuditEventKind,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.store
            .record_note(
                &self.scope,
                NoteStep {
                    message: message.clone(),
                    event: StepEvent::new(kind, data),
                },
            )
            .await
    }

    /// An event that is a step on its own (a failed model call, a refused model).
    pub async fn audit(
        &self,
        kind: AuditEventKind,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.store
            .append_audit(
                &self.scope.tenant,
                NewAuditEvent {
                    kind,
                    session_key: Some(self.scope.session_key.clone()),
                    run_id: Some(self.scope.run_id.clone()),
                    actor: self.scope.actor.clone(),
                    data,
                },
            )
            .await
            .map(|_| ())
    }

    pub async fn tool_started(
        &self,
        call_id: &str,
        tool: &str,
        arguments: &str,
    ) -> Result<(), StoreError> {
        self.store
            .record_tool_started(
                &self.scope,
                ToolStartedStep {
                    call_id: call_id.to_owned(),
                    tool: tool.to_owned(),
                    arguments: self.clip(arguments),
                    event: None,
                },
            )
            .await
    }

    /// Records a call's end in one transaction: its row, its result message and its
    /// events.
    pub async fn tool_finished(
        &self,
        call_id: &str,
        status: ToolCallStatus,
        result: &str,
        message: &ChatMessage,
        events: Vec<StepEvent>,
    ) -> Result<(), StoreError> {
        self.store
            .record_tool_finished(
                &self.scope,
                ToolFinishedStep {
                    call_id: call_id.to_owned(),
                    status,
                    result: self.clip(result),
                    message: message.clone(),
                    events,
                },
            )
            .await
    }

    /// Records the end of the turn in one transaction: the run's final row and a
    /// `turn_finished` event.
    pub async fn finish(&self, stop: &StopReason, progress: &Progress) -> Result<(), StoreError> {
        match stop {
            // Not an end: the gate already moved the run to `awaiting_review`.
            StopReason::AwaitingReview { .. } => return Ok(()),
            // Not this node's to end: the session's new owner continues the run.
            StopReason::Fenced(_) => return Ok(()),
            _ => {}
        }
        let status = stop.run_status();
        let event = StepEvent::new(
            AuditEventKind::TurnFinished,
            serde_json::json!({
                "status": status.as_str(),
                "stop": stop,
                "modelCalls": progress.model_calls,
                "toolCalls": progress.tools_used.len(),
                "usage": progress.usage,
            }),
        );
        let result = self
            .store
            .record_turn_finished(
                &self.scope,
                TurnFinishedStep {
                    status,
                    content: progress.content.clone(),
                    usage: progress.usage,
                    event,
                },
            )
            .await;
        if let Err(e) = &result {
            tracing::error!(run = %self.scope.run_id, error = %e, "could not record the end of a turn");
        }
        result
    }

    /// Cuts a field to the configured audit size, saying how much was cut.
    pub fn clip(&self, text: &str) -> String {
        clip(text, self.max_field_chars)
    }
}

/// The key of the requested model in a run's `turn_started` event.
const REQUESTED_MODEL: &str = "requestedModel";

/// The model `run` was accepted with, `None` when it asked for none (the default).
///
/// Read from the run's `turn_started` event, which the accept step writes in the same
/// transaction as the run: durable without a column of its own. When the store gains
/// `runs.model` (written by the accept step), this becomes a read of the run row.
pub(super) async fn requested_model(
    store: &dyn Store,
    tenant: &facio_services::domain::TenantId,
    run: &facio_services::domain::RunId,
) -> Result<Option<String>, StoreError> {
    let event = run_event(store, tenant, run, AuditEventKind::TurnStarted).await?;
    Ok(event.as_ref().and_then(requested_in))
}

/// The run's first event of `kind`.
async fn run_event(
    store: &dyn Store,
    tenant: &facio_services::domain::TenantId,
    run: &facio_services::domain::RunId,
    kind: AuditEventKind,
) -> Result<Option<facio_services::store::AuditEvent>, StoreError> {
    let filter = AuditFilter {
        run_id: Some(run.clone()),
        kind: Some(kind),
        limit: Some(1),
        ..AuditFilter::default()
    };
    Ok(store.list_audit(tenant, &filter).await?.into_iter().next())
}

/// The requested model an accept or queued event names.
fn requested_in(event: &facio_services::store::AuditEvent) -> Option<String> {
    event
        .data
        .get(REQUESTED_MODEL)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

pub(super) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!(
            "{}… [{} more chars]",
            &text[..idx],
            text[idx..].chars().count()
        ),
        None => text.to_owned(),
    }
}

/// The `queued` record of a turn: its input redacted like an accepted one, and its
/// `turn_queued` event (origin, input, requested model, and `extra` fields).
pub(crate) async fn queued_step(
    deps: &crate::context::NodeContext,
    tenant: &facio_services::domain::TenantId,
    input: &str,
    origin: Origin,
    model: Option<&str>,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<QueuedStep, String> {
    let secrets = deps
        .tenants
        .credentials(deps.store.as_ref(), &deps.vault, tenant)
        .await
        .map_err(|e| e.to_string())?;
    let input = if secrets.is_empty() {
        input.to_owned()
    } else {
        secrets.redact(input)
    };
    let mut data = serde_json::json!({
        "origin": origin.as_str(),
        "input": clip(&input, deps.config.audit.max_field_chars),
    });
    if let Some(model) = model {
        data[REQUESTED_MODEL] = serde_json::json!(model);
    }
    for (key, value) in extra {
        data[key] = value;
    }
    Ok(QueuedStep {
        input,
        event: StepEvent::new(AuditEventKind::TurnQueued, data),
    })
}

/// Records a turn that has to wait behind another of its session: its run as
/// `queued` and the `turn_queued` event (origin, input, requested model), in one step
/// fenced by the session's epoch, so the caller is acknowledged only once it is
/// durable. The input is redacted like an accepted one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_queued(
    deps: &crate::context::NodeContext,
    tenant: &facio_services::domain::TenantId,
    key: &facio_services::domain::SessionKey,
    epoch: facio_services::store::Epoch,
    run_id: &facio_services::domain::RunId,
    input: &str,
    origin: Origin,
    model: Option<&str>,
) -> Result<(), super::NotAccepted> {
    let step = queued_step(deps, tenant, input, origin, model, serde_json::Map::new())
        .await
        .map_err(super::NotAccepted::Failed)?;
    let scope = RunScope {
        tenant: tenant.clone(),
        session_key: key.clone(),
        run_id: run_id.clone(),
        actor: "agent".to_owned(),
        epoch,
    };
    deps.store
        .record_queued(&scope, step)
        .await
        .map_err(|e| match e {
            StoreError::Busy(why) => super::NotAccepted::Busy(why),
            other => super::NotAccepted::Failed(format!("the store failed: {other}")),
        })
}

/// How a run that started was submitted (its origin), from its `turn_started`
/// event; `None` when it has none.
pub(crate) async fn started_as(
    store: &dyn Store,
    tenant: &facio_services::domain::TenantId,
    run: &facio_services::domain::RunId,
) -> Result<Option<Origin>, StoreError> {
    let event = run_event(store, tenant, run, AuditEventKind::TurnStarted).await?;
    Ok(event.and_then(|event| {
        event
            .data
            .get("origin")
            .and_then(serde_json::Value::as_str)
            .and_then(Origin::parse)
    }))
}

/// How a queued run was submitted (origin and requested model), from its
/// `turn_queued` event; `None` when it has none.
pub(crate) async fn queued_as(
    store: &dyn Store,
    tenant: &facio_services::domain::TenantId,
    run: &facio_services::domain::RunId,
) -> Result<Option<(Origin, Option<String>)>, StoreError> {
    let event = run_event(store, tenant, run, AuditEventKind::TurnQueued).await?;
    Ok(event.map(|event| {
        let origin = event
            .data
            .get("origin")
            .and_then(serde_json::Value::as_str)
            .and_then(Origin::parse)
            .unwrap_or(Origin::Api);
        (origin, requested_in(&event))
    }))
}
