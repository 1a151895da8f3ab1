//! Writes a turn's steps to the store: messages, the run row and audit events.

use std::sync::Arc;

use facio_services::domain::{ChatMessage, RunId, SessionKey, TenantId, Usage};
use facio_services::store::{AuditEventKind, NewAuditEvent, NewUsage, Store, StoreError};

use super::{Origin, Progress, StopReason, TurnTask};

/// The store, bound to one run.
pub(super) struct Recorder {
    store: Arc<dyn Store>,
    tenant: TenantId,
    key: SessionKey,
    run_id: RunId,
    origin: Origin,
    max_field_chars: usize,
}

impl Recorder {
    pub fn new(task: &TurnTask) -> Self {
        Self {
            store: task.deps.store.clone(),
            tenant: task.tenant.clone(),
            key: task.key.clone(),
            run_id: task.run_id.clone(),
            origin: task.origin,
            max_field_chars: task.deps.config.audit.max_field_chars,
        }
    }

    /// Records that the turn was accepted: the run, the user's message and the audit
    /// event, each with the message as given (already redacted).
    pub async fn accept(&self, user: &ChatMessage) -> Result<(), StoreError> {
        let input = user.content.as_deref().unwrap_or_default();
        self.store.ensure_session(&self.tenant, &self.key).await?;
        self.store
            .create_run(&self.tenant, &self.key, &self.run_id, input)
            .await?;
        self.append(std::slice::from_ref(user)).await?;
        self.audit(
            AuditEventKind::TurnStarted,
            serde_json::json!({
                "origin": self.origin.as_str(),
                "input": self.clip(input),
            }),
        )
        .await
    }

    pub async fn append(&self, messages: &[ChatMessage]) -> Result<(), StoreError> {
        self.store
            .append_messages(&self.tenant, &self.key, Some(&self.run_id), messages)
            .await
            .map(|_| ())
    }

    /// Records what one model call spent.
    pub async fn usage(
        &self,
        model: &str,
        usage: Usage,
        cost_micros: u64,
    ) -> Result<(), StoreError> {
        self.store
            .record_usage(
                &self.tenant,
                &NewUsage {
                    run_id: self.run_id.clone(),
                    session_key: self.key.clone(),
                    model: model.to_owned(),
                    usage,
                    cost_micros,
                },
            )
            .await
    }

    pub async fn audit(
        &self,
        kind: AuditEventKind,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.store
            .append_audit(
                &self.tenant,
                NewAuditEvent {
                    kind,
                    session_key: Some(self.key.clone()),
                    run_id: Some(self.run_id.clone()),
                    actor: "agent".to_owned(),
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
            .tool_call_started(
                &self.tenant,
                &self.run_id,
                call_id,
                tool,
                &self.clip(arguments),
            )
            .await
    }

    pub async fn tool_finished(
        &self,
        call_id: &str,
        status: facio_services::store::ToolCallStatus,
        result: &str,
    ) -> Result<(), StoreError> {
        self.store
            .tool_call_finished(
                &self.tenant,
                &self.run_id,
                call_id,
                status,
                &self.clip(result),
            )
            .await
    }

    /// Records the end of the turn: the run's final row and a `turn_finished` event.
    pub async fn finish(&self, stop: &StopReason, progress: &Progress) -> Result<(), StoreError> {
        if matches!(stop, StopReason::AwaitingReview { .. }) {
            // Not an end: the gate already moved the run to `awaiting_review`.
            return Ok(());
        }
        let status = stop.run_status();
        let result = async {
            self.store
                .finish_run(
                    &self.tenant,
                    &self.run_id,
                    status,
                    progress.content.as_deref(),
                    progress.usage,
                )
                .await?;
            self.audit(
                AuditEventKind::TurnFinished,
                serde_json::json!({
                    "status": status.as_str(),
                    "stop": stop,
                    "modelCalls": progress.model_calls,
                    "toolCalls": progress.tools_used.len(),
                    "usage": progress.usage,
                }),
            )
            .await
        }
        .await;
        if let Err(e) = &result {
            tracing::error!(run = %self.run_id, error = %e, "could not record the end of a turn");
        }
        result
    }

    /// Cuts a field to the configured audit size, saying how much was cut.
    pub fn clip(&self, text: &str) -> String {
        clip(text, self.max_field_chars)
    }
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
