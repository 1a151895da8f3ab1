//! A session's steps, each in one `BEGIN IMMEDIATE … COMMIT` under the writer lock,
//! with its audit events chained inside the same transaction. A step that fails
//! anywhere rolls back whole (the transaction is dropped uncommitted).

use async_trait::async_trait;

use super::SqliteStore;
use super::audit::append_audit_in;
use super::reviews::{close_review_in, create_review_in, get_review_in};
use super::runs::{
    create_run_in, finish_run_in, set_run_status_in, tool_call_finished_in, tool_call_started_in,
};
use super::sessions::append_messages_in;
use super::usage::record_usage_in;
use crate::domain::TenantId;
use crate::store::{
    AcceptStep, GateClosedStep, GateOpenedStep, ModelReplyStep, NewAuditEvent, NewUsage, NoteStep,
    ReviewRecord, RunScope, RunStatus, SessionLog, StepEvent, StoreError, ToolFinishedStep,
    ToolStartedStep, TurnFinishedStep,
};

fn audit_event(run: &RunScope, event: StepEvent) -> NewAuditEvent {
    NewAuditEvent {
        kind: event.kind,
        session_key: Some(run.session_key.clone()),
        run_id: Some(run.run_id.clone()),
        actor: run.actor.clone(),
        data: event.data,
    }
}

/// Appends one message of the run to its session, inside the step's transaction.
async fn append_in(
    conn: &mut sqlx::SqliteConnection,
    run: &RunScope,
    message: &crate::domain::ChatMessage,
) -> Result<(), StoreError> {
    append_messages_in(
        conn,
        &run.tenant,
        &run.session_key,
        Some(&run.run_id),
        std::slice::from_ref(message),
    )
    .await
    .map(|_| ())
}

#[async_trait]
impl SessionLog for SqliteStore {
    async fn record_accept(&self, run: &RunScope, step: AcceptStep) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        create_run_in(
            &mut tx,
            &run.tenant,
            &run.session_key,
            &run.run_id,
            &step.input,
        )
        .await?;
        append_in(&mut tx, run, &step.user).await?;
        append_audit_in(&mut tx, &run.tenant, audit_event(run, step.event)).await?;
        self.commit(tx).await
    }

    async fn record_model_reply(
        &self,
        run: &RunScope,
        step: ModelReplyStep,
    ) -> Result<(), StoreError> {
        let usage = NewUsage {
            run_id: run.run_id.clone(),
            session_key: run.session_key.clone(),
            model: step.spend.model,
            usage: step.spend.usage,
            cost_micros: step.spend.cost_micros,
        };
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        record_usage_in(&mut *tx, &run.tenant, &usage).await?;
        append_in(&mut tx, run, &step.message).await?;
        append_audit_in(&mut tx, &run.tenant, audit_event(run, step.event)).await?;
        self.commit(tx).await
    }

    async fn record_note(&self, run: &RunScope, step: NoteStep) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        append_in(&mut tx, run, &step.message).await?;
        append_audit_in(&mut tx, &run.tenant, audit_event(run, step.event)).await?;
        self.commit(tx).await
    }

    async fn record_tool_started(
        &self,
        run: &RunScope,
        step: ToolStartedStep,
    ) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        tool_call_started_in(
            &mut *tx,
            &run.tenant,
            &run.run_id,
            &step.call_id,
            &step.tool,
            &step.arguments,
        )
        .await?;
        if let Some(event) = step.event {
            append_audit_in(&mut tx, &run.tenant, audit_event(run, event)).await?;
        }
        self.commit(tx).await
    }

    async fn record_tool_finished(
        &self,
        run: &RunScope,
        step: ToolFinishedStep,
    ) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        tool_call_finished_in(
            &mut *tx,
            &run.tenant,
            &run.run_id,
            &step.call_id,
            step.status,
            &step.result,
        )
        .await?;
        append_in(&mut tx, run, &step.message).await?;
        for event in step.events {
            append_audit_in(&mut tx, &run.tenant, audit_event(run, event)).await?;
        }
        self.commit(tx).await
    }

    async fn record_turn_finished(
        &self,
        run: &RunScope,
        step: TurnFinishedStep,
    ) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        finish_run_in(
            &mut tx,
            &run.tenant,
            &run.run_id,
            step.status,
            step.content.as_deref(),
            step.usage,
        )
        .await?;
        append_audit_in(&mut tx, &run.tenant, audit_event(run, step.event)).await?;
        self.commit(tx).await
    }

    async fn record_gate_opened(
        &self,
        run: &RunScope,
        step: GateOpenedStep,
    ) -> Result<ReviewRecord, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        create_review_in(&mut tx, &run.tenant, &step.review).await?;
        // A run recovered as interrupted (an in-doubt call) is not running: it keeps
        // its status and the review still opens.
        set_run_status_in(
            &mut *tx,
            &run.tenant,
            &run.run_id,
            RunStatus::Running,
            RunStatus::AwaitingReview,
        )
        .await?;
        for event in step.events {
            append_audit_in(&mut tx, &run.tenant, audit_event(run, event)).await?;
        }
        let record = get_review_in(&mut tx, &run.tenant, &step.review.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("review {}", step.review.id)))?;
        self.commit(tx).await?;
        Ok(record)
    }

    async fn record_gate_closed(
        &self,
        tenant: &TenantId,
        step: GateClosedStep,
    ) -> Result<ReviewRecord, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.begin_write().await?;
        let record = close_review_in(&mut tx, tenant, &step.review_id, &step.outcome).await?;
        let scope = RunScope {
            tenant: tenant.clone(),
            session_key: record.session_key.clone(),
            run_id: record.run_id.clone(),
            actor: step.actor,
        };
        let event = (step.event)(&record);
        append_audit_in(&mut tx, tenant, audit_event(&scope, event)).await?;
        self.commit(tx).await?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::SqliteStore;
    use crate::domain::{ChatMessage, RunId, SessionKey, TenantId, ToolCall, Usage};
    use crate::store::{
        AcceptStep, AuditEventKind, AuditFilter, AuditRepository, ModelReplyStep, ModelSpend,
        RunRepository, RunScope, SessionLog, SessionRepository, StepEvent, StoreMetrics,
        ToolCallStatus, ToolFinishedStep, ToolStartedStep, UsageRepository,
    };

    fn scope() -> RunScope {
        RunScope {
            tenant: TenantId::new("acme").unwrap(),
            session_key: SessionKey::new("steps:1").unwrap(),
            run_id: RunId::generate(),
            actor: "agent".into(),
        }
    }

    fn reply(message: ChatMessage) -> ModelReplyStep {
        ModelReplyStep {
            spend: ModelSpend {
                model: "m".into(),
                usage: Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                    total_tokens: 5,
                },
                cost_micros: 7,
            },
            message,
            event: StepEvent::new(AuditEventKind::ModelCall, json!({"ok": true})),
        }
    }

    #[tokio::test]
    async fn a_step_is_all_or_nothing_and_each_is_one_commit() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let run = scope();
        let user = ChatMessage::user("hello");
        let before = store.counts();
        store
            .record_accept(
                &run,
                AcceptStep {
                    input: "hello".into(),
                    user: user.clone(),
                    event: StepEvent::new(AuditEventKind::TurnStarted, json!({"input": "hello"})),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.counts().commits,
            before.commits + 1,
            "accept: one commit"
        );
        assert_eq!(
            store.counts().reads,
            before.reads,
            "accept reads nothing outside it"
        );

        // A unique index on the message text makes the reply's message insert fail
        // after its usage row was written, inside the same transaction.
        sqlx::query("CREATE UNIQUE INDEX one_text ON messages (message)")
            .execute(store.pool())
            .await
            .unwrap();
        let failed = store.record_model_reply(&run, reply(user.clone())).await;
        assert!(failed.is_err(), "{failed:?}");
        let usage = store.run_usage(&run.tenant, &run.run_id).await.unwrap();
        assert!(usage.is_empty(), "the usage row rolled back: {usage:?}");
        let events = store
            .list_audit(&run.tenant, &AuditFilter::default())
            .await
            .unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![AuditEventKind::TurnStarted],
            "no model_call event"
        );
        let history = store.history(&run.tenant, &run.session_key).await.unwrap();
        assert_eq!(history.len(), 1);

        // A tool call's finish is one step too: its row stays `started` (so recovery
        // calls it in doubt) when its result message cannot be written.
        let call = ToolCall {
            id: "call_1".into(),
            name: "exec".into(),
            arguments: "{}".into(),
        };
        store
            .record_tool_started(
                &run,
                ToolStartedStep {
                    call_id: call.id.clone(),
                    tool: call.name.clone(),
                    arguments: call.arguments.clone(),
                    event: None,
                },
            )
            .await
            .unwrap();
        let finish = |message: ChatMessage| ToolFinishedStep {
            call_id: call.id.clone(),
            status: ToolCallStatus::Succeeded,
            result: "done".into(),
            message,
            events: vec![
                StepEvent::new(AuditEventKind::CredentialRead, json!({"keys": ["K"]})),
                StepEvent::new(AuditEventKind::ToolCall, json!({"callId": "call_1"})),
            ],
        };
        let failed = store.record_tool_finished(&run, finish(user.clone())).await;
        assert!(failed.is_err(), "{failed:?}");
        let calls = store.tool_calls(&run.tenant, &run.run_id).await.unwrap();
        assert_eq!(calls[0].status, ToolCallStatus::Started);
        assert_eq!(calls[0].result, None);
        let events = store
            .list_audit(&run.tenant, &AuditFilter::default())
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{events:?}");

        // The chain head did not move with the rolled-back events: the next steps
        // chain on and the whole chain verifies.
        let commits = store.counts().commits;
        store
            .record_tool_finished(&run, finish(ChatMessage::tool_result(&call, "done")))
            .await
            .unwrap();
        store
            .record_model_reply(&run, reply(ChatMessage::assistant("bye")))
            .await
            .unwrap();
        assert_eq!(store.counts().commits, commits + 2, "one commit per step");
        let calls = store.tool_calls(&run.tenant, &run.run_id).await.unwrap();
        assert_eq!(calls[0].status, ToolCallStatus::Succeeded);
        let seqs: Vec<i64> = store
            .list_audit(&run.tenant, &AuditFilter::default())
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        let report = store.verify_audit(&run.tenant).await.unwrap();
        assert!(report.first_broken.is_none(), "{report:?}");
        assert_eq!(
            store
                .run_usage(&run.tenant, &run.run_id)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
