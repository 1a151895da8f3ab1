//! A session's steps, each one unit of the writer's group commit (its own savepoint),
//! with its epoch checked and its audit events chained inside it. A step that fails
//! anywhere rolls back whole and fails alone; it is answered only after its batch
//! committed.

use async_trait::async_trait;

use super::SqliteStore;
use super::audit::{append_audit_in, checkpoint_in};
use super::leases::check_epoch_in;
use super::reviews::{close_review_in, create_review_in, get_review_in};
use super::runs::{
    create_run_in, finish_run_in, set_run_status_in, tool_call_finished_in, tool_call_started_in,
};
use super::sessions::append_messages_in;
use super::usage::record_usage_in;
use crate::domain::TenantId;
use crate::store::{
    AcceptStep, AuditKey, GateClosedStep, GateOpenedStep, ModelReplyStep, NewAuditEvent, NewUsage,
    NoteStep, QueuedStep, ReviewRecord, RunScope, RunStatus, SessionLog, StepEvent, StoreError,
    ToolFinishedStep, ToolStartedStep, TurnFinishedStep,
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

/// Creates `run` as `queued` with its `turn_queued` event, inside the step.
async fn queue_run_in(
    conn: &mut sqlx::SqliteConnection,
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
    events_in(&mut *conn, run, [step.event], key).await
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

/// Appends the step's events to the session's chain, inside the step's transaction.
async fn events_in(
    conn: &mut sqlx::SqliteConnection,
    run: &RunScope,
    events: impl IntoIterator<Item = StepEvent>,
    key: Option<&AuditKey>,
) -> Result<(), StoreError> {
    for event in events {
        append_audit_in(
            &mut *conn,
            &run.tenant,
            audit_event(run, event),
            Some(run.epoch.get()),
            key,
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl SessionLog for SqliteStore {
    async fn record_accept(&self, run: &RunScope, step: AcceptStep) -> Result<(), StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                let was_queued = set_run_status_in(
                    &mut *conn,
                    &run.tenant,
                    &run.run_id,
                    RunStatus::Queued,
                    RunStatus::Running,
                )
                .await?;
                if !was_queued {
                    create_run_in(
                        &mut *conn,
                        &run.tenant,
                        &run.session_key,
                        &run.run_id,
                        &step.input,
                    )
                    .await?;
                }
                append_in(&mut *conn, &run, &step.user).await?;
                events_in(&mut *conn, &run, [step.event], key.as_ref()).await
            })
        })
        .await
    }

    async fn record_queued(&self, run: &RunScope, step: QueuedStep) -> Result<(), StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                queue_run_in(&mut *conn, &run, step, key.as_ref()).await
            })
        })
        .await
    }

    async fn enqueue_turn(
        &self,
        tenant: &TenantId,
        key: &crate::domain::SessionKey,
        run_id: &crate::domain::RunId,
        actor: &str,
        step: QueuedStep,
    ) -> Result<bool, StoreError> {
        let (tenant, key, run_id, actor) = (
            tenant.clone(),
            key.clone(),
            run_id.clone(),
            actor.to_owned(),
        );
        let audit_key = self.audit_key();
        self.write(move |conn| {
            Box::pin(async move {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM runs WHERE tenant_id = ? AND run_id = ?")
                        .bind(tenant.as_str())
                        .bind(run_id.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                if exists.is_some() {
                    return Ok(false);
                }
                let epoch: Option<i64> = sqlx::query_scalar(
                    "SELECT epoch FROM session_leases WHERE tenant_id = ? AND session_key = ?",
                )
                .bind(tenant.as_str())
                .bind(key.as_str())
                .fetch_optional(&mut *conn)
                .await?;
                let run = RunScope {
                    tenant,
                    session_key: key,
                    run_id,
                    actor,
                    epoch: crate::store::Epoch::from_stored(epoch.unwrap_or(0)),
                };
                queue_run_in(&mut *conn, &run, step, audit_key.as_ref()).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn record_model_reply(
        &self,
        run: &RunScope,
        step: ModelReplyStep,
    ) -> Result<(), StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write_waiting(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                let usage = NewUsage {
                    run_id: run.run_id.clone(),
                    session_key: run.session_key.clone(),
                    model: step.spend.model,
                    usage: step.spend.usage,
                    cost_micros: step.spend.cost_micros,
                };
                record_usage_in(&mut *conn, &run.tenant, &usage).await?;
                append_in(&mut *conn, &run, &step.message).await?;
                events_in(&mut *conn, &run, [step.event], key.as_ref()).await
            })
        })
        .await
    }

    async fn record_note(&self, run: &RunScope, step: NoteStep) -> Result<(), StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write_waiting(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                append_in(&mut *conn, &run, &step.message).await?;
                events_in(&mut *conn, &run, [step.event], key.as_ref()).await
            })
        })
        .await
    }

    async fn record_tool_started(
        &self,
        run: &RunScope,
        step: ToolStartedStep,
    ) -> Result<(), StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write_waiting(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                tool_call_started_in(
                    &mut *conn,
                    &run.tenant,
                    &run.run_id,
                    &step.call_id,
                    &step.tool,
                    &step.arguments,
                )
                .await?;
                events_in(&mut *conn, &run, step.event, key.as_ref()).await
            })
        })
        .await
    }

    async fn record_tool_finished(
        &self,
        run: &RunScope,
        step: ToolFinishedStep,
    ) -> Result<(), StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write_waiting(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                tool_call_finished_in(
                    &mut *conn,
                    &run.tenant,
                    &run.run_id,
                    &step.call_id,
                    step.status,
                    &step.result,
                )
                .await?;
                append_in(&mut *conn, &run, &step.message).await?;
                events_in(&mut *conn, &run, step.events, key.as_ref()).await
            })
        })
        .await
    }

    async fn record_turn_finished(
        &self,
        run: &RunScope,
        step: TurnFinishedStep,
    ) -> Result<(), StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write_waiting(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                finish_run_in(
                    &mut *conn,
                    &run.tenant,
                    &run.run_id,
                    step.status,
                    step.content.as_deref(),
                    step.usage,
                )
                .await?;
                events_in(&mut *conn, &run, [step.event], key.as_ref()).await?;
                checkpoint_in(&mut *conn, &run.tenant, key.as_ref()).await?;
                Ok(())
            })
        })
        .await
    }

    async fn record_gate_opened(
        &self,
        run: &RunScope,
        step: GateOpenedStep,
    ) -> Result<ReviewRecord, StoreError> {
        let (run, key) = (run.clone(), self.audit_key());
        self.write_waiting(move |conn| {
            Box::pin(async move {
                check_epoch_in(&mut *conn, &run).await?;
                create_review_in(&mut *conn, &run.tenant, &step.review).await?;
                // A run recovered as interrupted (an in-doubt call) is not running: it
                // keeps its status and the review still opens.
                set_run_status_in(
                    &mut *conn,
                    &run.tenant,
                    &run.run_id,
                    RunStatus::Running,
                    RunStatus::AwaitingReview,
                )
                .await?;
                events_in(&mut *conn, &run, step.events, key.as_ref()).await?;
                checkpoint_in(&mut *conn, &run.tenant, key.as_ref()).await?;
                get_review_in(&mut *conn, &run.tenant, &step.review.id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("review {}", step.review.id)))
            })
        })
        .await
    }

    async fn record_gate_closed(
        &self,
        tenant: &TenantId,
        step: GateClosedStep,
    ) -> Result<ReviewRecord, StoreError> {
        // Not fenced: a human's decision is taken wherever it arrives, exactly once
        // (the close is conditional on the review still pending); the run resumes on
        // its session's owner.
        let (tenant, key) = (tenant.clone(), self.audit_key());
        self.write_waiting(move |conn| {
            Box::pin(async move {
                let record =
                    close_review_in(&mut *conn, &tenant, &step.review_id, &step.outcome).await?;
                let event = (step.event)(&record);
                let audit = NewAuditEvent {
                    kind: event.kind,
                    session_key: Some(record.session_key.clone()),
                    run_id: Some(record.run_id.clone()),
                    actor: step.actor,
                    data: event.data,
                };
                append_audit_in(&mut *conn, &tenant, audit, None, key.as_ref()).await?;
                checkpoint_in(&mut *conn, &tenant, key.as_ref()).await?;
                Ok(record)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use std::time::Duration;

    use sqlx::ConnectOptions;

    use super::SqliteStore;
    use crate::domain::{ChatMessage, NodeId, RunId, SessionKey, TenantId, ToolCall, Usage};
    use crate::store::{
        AcceptStep, AuditEventKind, AuditFilter, AuditRepository, LeaseRepository, ModelReplyStep,
        ModelSpend, RunRepository, RunScope, SessionLog, SessionRepository, StepEvent, StoreError,
        StoreMetrics, ToolCallStatus, ToolFinishedStep, ToolStartedStep, UsageRepository,
    };

    /// A run of a session whose lease `node` has just taken.
    async fn scope_on(store: &SqliteStore, session: &str, node: &str) -> RunScope {
        let tenant = TenantId::new("acme").unwrap();
        let session_key = SessionKey::new(session).unwrap();
        let lease = store
            .acquire_lease(
                &tenant,
                &session_key,
                &NodeId::new(node).unwrap(),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        RunScope {
            tenant,
            session_key,
            run_id: RunId::generate(),
            actor: "agent".into(),
            epoch: lease.epoch,
        }
    }

    fn accept(input: &str) -> AcceptStep {
        AcceptStep {
            input: input.into(),
            user: ChatMessage::user(input),
            event: StepEvent::new(AuditEventKind::TurnStarted, json!({"input": input})),
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
        let run = scope_on(&store, "steps:1", "node-a").await;
        let user = ChatMessage::user("hello");
        let before = store.counts();
        store.record_accept(&run, accept("hello")).await.unwrap();
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

    #[tokio::test]
    async fn a_stale_owner_is_fenced_off_and_writes_nothing() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let stale = scope_on(&store, "fenced:1", "node-a").await;
        store.record_accept(&stale, accept("first")).await.unwrap();
        // Another node takes the session (say node-a paused past its lease).
        let lease = store
            .acquire_lease(
                &stale.tenant,
                &stale.session_key,
                &NodeId::new("node-b").unwrap(),
                Duration::from_secs(30),
            )
            .await;
        assert!(
            matches!(lease, Err(StoreError::LeaseHeld { ref owner, .. }) if owner == "node-a"),
            "a live lease is not taken: {lease:?}"
        );
        let held = store
            .get_lease(&stale.tenant, &stale.session_key)
            .await
            .unwrap()
            .unwrap();
        store.release_lease(&held).await.unwrap();
        let fresh = scope_on(&store, "fenced:1", "node-b").await;
        assert!(fresh.epoch > stale.epoch);

        let events_before = store
            .list_audit(&stale.tenant, &AuditFilter::default())
            .await
            .unwrap()
            .len();
        let refused = store
            .record_model_reply(&stale, reply(ChatMessage::assistant("late")))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Fenced { .. })),
            "{refused:?}"
        );
        let renewed = store.renew_lease(&held, Duration::from_secs(30)).await;
        assert!(
            matches!(renewed, Err(StoreError::Fenced { .. })),
            "{renewed:?}"
        );
        let history = store
            .history(&stale.tenant, &stale.session_key)
            .await
            .unwrap();
        assert_eq!(
            history.len(),
            1,
            "the stale reply left nothing: {history:?}"
        );
        let events_after = store
            .list_audit(&stale.tenant, &AuditFilter::default())
            .await
            .unwrap()
            .len();
        assert_eq!(events_before, events_after);
        assert!(
            store
                .run_usage(&stale.tenant, &stale.run_id)
                .await
                .unwrap()
                .is_empty()
        );

        // The new owner writes on; releasing the stale lease does not free its session.
        store.release_lease(&held).await.unwrap();
        let next = RunScope {
            run_id: RunId::generate(),
            ..fresh.clone()
        };
        store.record_accept(&next, accept("second")).await.unwrap();
        let lease = store
            .get_lease(&fresh.tenant, &fresh.session_key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease.owner.as_str(), "node-b");
        assert_eq!(lease.epoch, fresh.epoch);
        assert!(lease.expires_at > chrono::Utc::now());
    }

    #[tokio::test]
    async fn concurrent_steps_share_commits_and_each_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("group.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let mut scopes = Vec::new();
        for n in 0..64 {
            scopes.push(scope_on(&store, &format!("group:{n}"), "node-a").await);
        }
        // One of them is fenced: its step fails inside a batch, the others commit.
        let fenced = RunScope {
            epoch: crate::store::Epoch::from_stored(scopes[7].epoch.get() + 1),
            ..scopes[7].clone()
        };
        let before = store.counts();
        let mut writes = Vec::new();
        for scope in scopes
            .iter()
            .filter(|s| s.session_key != fenced.session_key)
        {
            let (store, scope) = (store.clone(), scope.clone());
            writes.push(tokio::spawn(async move {
                store.record_accept(&scope, accept("hello")).await
            }));
        }
        let refused = {
            let store = store.clone();
            tokio::spawn(async move { store.record_accept(&fenced, accept("hello")).await })
        };
        for write in writes {
            write.await.unwrap().unwrap();
        }
        assert!(matches!(
            refused.await.unwrap(),
            Err(StoreError::Fenced { .. })
        ));
        let after = store.counts();
        assert_eq!(after.writes - before.writes, 64);
        assert!(
            after.commits - before.commits < 64,
            "63 steps at once share commits: {before:?} -> {after:?}"
        );
        let seqs: Vec<i64> = store
            .list_audit(&scopes[0].tenant, &AuditFilter::default())
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (1..=63).collect::<Vec<i64>>(),
            "no gap, no duplicate"
        );
        let report = store.verify_audit(&scopes[0].tenant).await.unwrap();
        assert!(report.first_broken.is_none(), "{report:?}");
        let fenced_history = store
            .history(&scopes[7].tenant, &scopes[7].session_key)
            .await
            .unwrap();
        assert!(fenced_history.is_empty());
    }

    #[tokio::test]
    async fn a_full_write_queue_says_busy_and_loses_nothing_it_took() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::connect_with_queue(&url, 4).await.unwrap();
        let scope = scope_on(&store, "busy:1", "node-a").await;
        // Another process holds the database's write lock: the writer waits.
        let mut blocker = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut blocker)
            .await
            .unwrap();
        let mut taken = Vec::new();
        let mut busy = None;
        for n in 0..(4 + super::super::writer::MAX_BATCH + 2) {
            let (store, scope) = (store.clone(), scope.clone());
            let run = RunScope {
                run_id: RunId::generate(),
                ..scope
            };
            let write =
                tokio::spawn(
                    async move { store.record_accept(&run, accept(&format!("m{n}"))).await },
                );
            // Each write has reached the queue (or been refused) before the next.
            tokio::task::yield_now().await;
            if write.is_finished() {
                busy = Some(write.await.unwrap());
                break;
            }
            taken.push(write);
        }
        let busy = busy.expect("the queue filled up");
        assert!(
            matches!(&busy, Err(StoreError::Busy(why)) if why.contains("full")),
            "{busy:?}"
        );
        sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
        let accepted = taken.len();
        for write in taken {
            write.await.unwrap().unwrap();
        }
        let history = store
            .history(&scope.tenant, &scope.session_key)
            .await
            .unwrap();
        assert_eq!(history.len(), accepted, "every write it took is stored");
    }
}
