//! A session's steps, each one transaction begun by [`PostgresStore::begin_step`],
//! with its audit events chained inside it. Steps of different sessions commit
//! concurrently; a step that fails anywhere rolls back whole (the transaction is
//! dropped uncommitted).

use async_trait::async_trait;

use super::PostgresStore;
use super::audit::append_audit_in;
use super::reviews::{close_review_in, create_review_in, get_review_in};
use super::runs::{
    create_run_in, finish_run_in, set_run_status_in, tool_call_finished_in, tool_call_started_in,
};
use super::sessions::append_messages_in;
use super::usage::record_usage_in;
use crate::domain::{ChatMessage, TenantId};
use crate::store::chain::step_audit_event;
use crate::store::{
    AcceptStep, AuditKey, GateClosedStep, GateOpenedStep, ModelReplyStep, NewUsage, NoteStep,
    QueuedStep, ReviewRecord, RunScope, RunStatus, SessionLog, StepEvent, StoreError,
    ToolFinishedStep, ToolStartedStep, TurnFinishedStep,
};

/// Appends one message of the run to its session, inside the step's transaction.
async fn append_in(
    conn: &mut sqlx::PgConnection,
    run: &RunScope,
    message: &ChatMessage,
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

/// Creates `run` as `queued` with its `turn_queued` event, inside the step
/// ([`StoreError::Conflict`] if the run exists).
async fn queue_run_in(
    conn: &mut sqlx::PgConnection,
    run: &RunScope,
    step: QueuedStep,
    key: Option<&AuditKey>,
) -> Result<(), StoreError> {
    create_run_in(
        &mut *conn,
        &run.tenant,
        &run.session_key,
        &run.run_id,
        &step.input,
    )
    .await?;
    set_run_status_in(
        &mut *conn,
        &run.tenant,
        &run.run_id,
        RunStatus::Running,
        RunStatus::Queued,
    )
    .await?;
    audit_in(&mut *conn, run, [step.event], key).await
}

/// Chains the step's events, in order, inside its transaction.
async fn audit_in(
    conn: &mut sqlx::PgConnection,
    run: &RunScope,
    events: impl IntoIterator<Item = StepEvent>,
    key: Option<&AuditKey>,
) -> Result<(), StoreError> {
    for event in events {
        append_audit_in(
            &mut *conn,
            &run.tenant,
            step_audit_event(run, event),
            Some(run.epoch.get()),
            key,
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl SessionLog for PostgresStore {
    async fn record_accept(&self, run: &RunScope, step: AcceptStep) -> Result<(), StoreError> {
        let mut tx = self.begin_step(run).await?;
        let was_queued = set_run_status_in(
            &mut tx,
            &run.tenant,
            &run.run_id,
            RunStatus::Queued,
            RunStatus::Running,
        )
        .await?;
        if !was_queued {
            create_run_in(
                &mut tx,
                &run.tenant,
                &run.session_key,
                &run.run_id,
                &step.input,
            )
            .await?;
        }
        append_in(&mut tx, run, &step.user).await?;
        audit_in(&mut tx, run, [step.event], self.audit_key().as_ref()).await?;
        self.commit(tx).await
    }

    async fn record_queued(&self, run: &RunScope, step: QueuedStep) -> Result<(), StoreError> {
        let mut tx = self.begin_step(run).await?;
        queue_run_in(&mut tx, run, step, self.audit_key().as_ref()).await?;
        self.commit(tx).await
    }

    async fn enqueue_turn(
        &self,
        tenant: &TenantId,
        key: &crate::domain::SessionKey,
        run_id: &crate::domain::RunId,
        actor: &str,
        step: QueuedStep,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write(tenant).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM runs WHERE tenant_id = $1 AND run_id = $2")
                .bind(tenant.as_str())
                .bind(run_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Ok(false);
        }
        let epoch: Option<i64> = sqlx::query_scalar(
            "SELECT epoch FROM session_leases WHERE tenant_id = $1 AND session_key = $2 \
             FOR SHARE",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let run = RunScope {
            tenant: tenant.clone(),
            session_key: key.clone(),
            run_id: run_id.clone(),
            actor: actor.to_owned(),
            epoch: crate::store::Epoch::from_stored(epoch.unwrap_or(0)),
        };
        // Two nodes giving the same run at once: one insert wins, the other is a
        // conflict, which means the same as finding it.
        match queue_run_in(&mut tx, &run, step, self.audit_key().as_ref()).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.commit(tx).await?;
        Ok(true)
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
        let mut tx = self.begin_step(run).await?;
        record_usage_in(&mut tx, &run.tenant, &usage).await?;
        append_in(&mut tx, run, &step.message).await?;
        audit_in(&mut tx, run, [step.event], self.audit_key().as_ref()).await?;
        self.commit(tx).await
    }

    async fn record_note(&self, run: &RunScope, step: NoteStep) -> Result<(), StoreError> {
        let mut tx = self.begin_step(run).await?;
        append_in(&mut tx, run, &step.message).await?;
        audit_in(&mut tx, run, [step.event], self.audit_key().as_ref()).await?;
        self.commit(tx).await
    }

    async fn record_tool_started(
        &self,
        run: &RunScope,
        step: ToolStartedStep,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_step(run).await?;
        tool_call_started_in(
            &mut tx,
            &run.tenant,
            &run.run_id,
            &step.call_id,
            &step.tool,
            &step.arguments,
        )
        .await?;
        audit_in(&mut tx, run, step.event, self.audit_key().as_ref()).await?;
        self.commit(tx).await
    }

    async fn record_tool_finished(
        &self,
        run: &RunScope,
        step: ToolFinishedStep,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_step(run).await?;
        tool_call_finished_in(
            &mut tx,
            &run.tenant,
            &run.run_id,
            &step.call_id,
            step.status,
            &step.result,
        )
        .await?;
        append_in(&mut tx, run, &step.message).await?;
        audit_in(&mut tx, run, step.events, self.audit_key().as_ref()).await?;
        self.commit(tx).await
    }

    async fn record_turn_finished(
        &self,
        run: &RunScope,
        step: TurnFinishedStep,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_step(run).await?;
        finish_run_in(
            &mut tx,
            &run.tenant,
            &run.run_id,
            step.status,
            step.content.as_deref(),
            step.usage,
        )
        .await?;
        audit_in(&mut tx, run, [step.event], self.audit_key().as_ref()).await?;
        self.commit(tx).await
    }

    async fn record_gate_opened(
        &self,
        run: &RunScope,
        step: GateOpenedStep,
    ) -> Result<ReviewRecord, StoreError> {
        let mut tx = self.begin_step(run).await?;
        create_review_in(&mut tx, &run.tenant, &step.review).await?;
        // A run recovered as interrupted (an in-doubt call) is not running: it keeps
        // its status and the review still opens.
        set_run_status_in(
            &mut tx,
            &run.tenant,
            &run.run_id,
            RunStatus::Running,
            RunStatus::AwaitingReview,
        )
        .await?;
        audit_in(&mut tx, run, step.events, self.audit_key().as_ref()).await?;
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
        // Not fenced: a human's decision is taken wherever it arrives, exactly once
        // (the close is conditional on the review still pending).
        let key = self.audit_key();
        let mut tx = self.write(tenant).await?;
        let record = close_review_in(&mut tx, tenant, &step.review_id, &step.outcome).await?;
        let event = (step.event)(&record);
        let audit = crate::store::NewAuditEvent {
            kind: event.kind,
            session_key: Some(record.session_key.clone()),
            run_id: Some(record.run_id.clone()),
            actor: step.actor,
            data: event.data,
        };
        append_audit_in(&mut tx, tenant, audit, None, key.as_ref()).await?;
        self.commit(tx).await?;
        Ok(record)
    }
}
