//! The session log: each step whole or not at all, conflicts, exactly-once review
//! closing, and many sessions stepping at once.

use std::sync::Arc;

use serde_json::json;

use super::harness::{Subject, conformance};
use super::{accept, new_review, reply, scope, tenant};
use crate::domain::{ChatMessage, RunId, ToolCall, Usage};
use crate::review::ReviewOutcome;
use crate::store::{
    AuditEventKind, AuditFilter, GateClosedStep, GateOpenedStep, QueuedStep, ReviewStatus,
    RunScope, RunStatus, StepEvent, Store, StoreError, ToolCallStatus, ToolFinishedStep,
    ToolStartedStep, TurnFinishedStep,
};

conformance!(
    a_step_is_all_or_nothing_and_each_is_one_commit,
    a_turn_and_a_call_finish_once,
    a_review_closes_exactly_once_under_concurrency,
    many_sessions_step_at_once_without_losing_a_sequence_number,
    a_turn_given_from_outside_is_taken_once_and_its_holder_runs_it,
);

fn started(call: &ToolCall) -> ToolStartedStep {
    ToolStartedStep {
        call_id: call.id.clone(),
        tool: call.name.clone(),
        arguments: call.arguments.clone(),
        event: Some(StepEvent::new(
            AuditEventKind::ToolCall,
            json!({"callId": call.id, "phase": "started"}),
        )),
    }
}

fn finished(call: &ToolCall, message: ChatMessage) -> ToolFinishedStep {
    ToolFinishedStep {
        call_id: call.id.clone(),
        status: ToolCallStatus::Succeeded,
        result: "done".into(),
        message,
        events: vec![
            StepEvent::new(AuditEventKind::CredentialRead, json!({"keys": ["K"]})),
            StepEvent::new(AuditEventKind::ToolCall, json!({"callId": call.id})),
        ],
    }
}

fn turn_finished() -> TurnFinishedStep {
    TurnFinishedStep {
        status: RunStatus::Completed,
        content: Some("bye".into()),
        usage: Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            total_tokens: 5,
        },
        event: StepEvent::new(AuditEventKind::TurnFinished, json!({"status": "completed"})),
    }
}

fn call(id: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: "exec".into(),
        arguments: "{}".into(),
    }
}

async fn audit_kinds(store: &dyn Store, run: &RunScope) -> Vec<AuditEventKind> {
    store
        .list_audit(&run.tenant, &AuditFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect()
}

async fn a_step_is_all_or_nothing_and_each_is_one_commit(subject: &Subject) {
    let store = subject.store.as_ref();
    let run = scope(subject.store.as_ref(), "acme", "steps:1").await;
    let before = store.counts();
    store.record_accept(&run, accept("hello")).await.unwrap();
    let after = store.counts();
    assert_eq!(after.commits, before.commits + 1, "accept: one commit");
    assert_eq!(after.reads, before.reads, "accept reads nothing outside it");
    let twice = store.record_accept(&run, accept("hello")).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");

    // A unique index on the message text makes the reply's message insert fail after
    // its usage row was written, inside the same transaction.
    subject
        .execute(None, "CREATE UNIQUE INDEX one_text ON messages (message)")
        .await
        .unwrap();
    let user = ChatMessage::user("hello");
    let failed = store.record_model_reply(&run, reply(user.clone())).await;
    assert!(failed.is_err(), "{failed:?}");
    let usage = store.run_usage(&run.tenant, &run.run_id).await.unwrap();
    assert!(usage.is_empty(), "the usage row rolled back: {usage:?}");
    assert_eq!(
        audit_kinds(store, &run).await,
        vec![AuditEventKind::TurnStarted]
    );
    assert_eq!(
        store
            .history(&run.tenant, &run.session_key)
            .await
            .unwrap()
            .len(),
        1
    );

    // A tool call's finish is one step too: its row stays `started` (so recovery
    // calls it in doubt) when its result message cannot be written.
    let call = call("call_1");
    store
        .record_tool_started(&run, started(&call))
        .await
        .unwrap();
    let failed = store
        .record_tool_finished(&run, finished(&call, user.clone()))
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let calls = store.tool_calls(&run.tenant, &run.run_id).await.unwrap();
    assert_eq!(
        (calls[0].status, calls[0].result.as_deref()),
        (ToolCallStatus::Started, None)
    );
    assert_eq!(audit_kinds(store, &run).await.len(), 2);

    // The chain head did not move with the rolled-back events: the next steps chain
    // on, one commit each, and the whole chain verifies.
    let commits = store.counts().commits;
    store
        .record_tool_finished(
            &run,
            finished(&call, ChatMessage::tool_result(&call, "done")),
        )
        .await
        .unwrap();
    store
        .record_model_reply(&run, reply(ChatMessage::assistant("bye")))
        .await
        .unwrap();
    store
        .record_turn_finished(&run, turn_finished())
        .await
        .unwrap();
    assert_eq!(store.counts().commits, commits + 3, "one commit per step");
    let calls = store.tool_calls(&run.tenant, &run.run_id).await.unwrap();
    assert_eq!(calls[0].status, ToolCallStatus::Succeeded);
    let events = store
        .list_audit(&run.tenant, &AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert!(
        events
            .iter()
            .all(|e| e.run_id.as_ref() == Some(&run.run_id))
    );
    let report = store.verify_audit(&run.tenant).await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    let usage = store.run_usage(&run.tenant, &run.run_id).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!((usage[0].total_tokens, usage[0].cost_micros), (5, 7));
    let history: Vec<_> = store
        .history(&run.tenant, &run.session_key)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.seq, m.message))
        .collect();
    assert_eq!(
        history,
        vec![
            (1, user),
            (2, ChatMessage::tool_result(&call, "done")),
            (3, ChatMessage::assistant("bye")),
        ]
    );
}

async fn a_turn_and_a_call_finish_once(subject: &Subject) {
    let store = subject.store.as_ref();
    let run = scope(subject.store.as_ref(), "acme", "once").await;
    let missing = store.record_tool_started(&run, started(&call("c"))).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    store.record_accept(&run, accept("go")).await.unwrap();
    let call = call("call_1");
    store
        .record_tool_started(&run, started(&call))
        .await
        .unwrap();
    let result = ChatMessage::tool_result(&call, "done");
    store
        .record_tool_finished(&run, finished(&call, result.clone()))
        .await
        .unwrap();
    let again = store
        .record_tool_finished(&run, finished(&call, result))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    store
        .record_turn_finished(&run, turn_finished())
        .await
        .unwrap();
    let again = store.record_turn_finished(&run, turn_finished()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let as_running = TurnFinishedStep {
        status: RunStatus::Running,
        ..turn_finished()
    };
    let refused = store.record_turn_finished(&run, as_running).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let finished_run = store
        .get_run(&run.tenant, &run.run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(finished_run.status, RunStatus::Completed);
    assert_eq!(finished_run.content.as_deref(), Some("bye"));
    // The refused steps left no events: started, call, credential, call, finished.
    assert_eq!(audit_kinds(store, &run).await.len(), 5);
    assert!(
        store
            .verify_audit(&run.tenant)
            .await
            .unwrap()
            .first_broken
            .is_none()
    );
}

async fn a_review_closes_exactly_once_under_concurrency(subject: &Subject) {
    let store = &subject.store;
    let run = scope(subject.store.as_ref(), "acme", "gate").await;
    store.record_accept(&run, accept("deploy")).await.unwrap();
    let review = store
        .record_gate_opened(
            &run,
            GateOpenedStep {
                review: new_review(&run, "call_1"),
                events: vec![
                    StepEvent::new(AuditEventKind::ReviewRequested, json!({"tool": "exec"})),
                    StepEvent::new(AuditEventKind::ReviewDelivered, json!({"to": "inbox"})),
                ],
            },
        )
        .await
        .unwrap();
    let other = crate::domain::TenantId::new("other").unwrap();
    assert!(
        store
            .get_review(&other, &review.id)
            .await
            .unwrap()
            .is_none()
    );
    let decided = |n: usize| ReviewOutcome::Decided {
        response: json!({"selectedOption": "approve"}),
        reviewer: Some(format!("reviewer {n}")),
        comment: None,
    };
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (store, tenant, id) = (Arc::clone(store), run.tenant.clone(), review.id.clone());
            // Decisions race withdrawals (a timeout would wait for its deadline).
            let outcome = if n % 2 == 0 {
                decided(n)
            } else {
                ReviewOutcome::Cancelled
            };
            tokio::spawn(async move {
                store
                    .record_gate_closed(
                        &tenant,
                        GateClosedStep {
                            review_id: id,
                            outcome,
                            actor: format!("closer {n}"),
                            event: Box::new(|record| {
                                StepEvent::new(
                                    AuditEventKind::ReviewDecided,
                                    json!({"status": record.status.as_str()}),
                                )
                            }),
                        },
                    )
                    .await
            })
        })
        .collect();
    let mut closed = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(record) => closed.push(record),
            Err(StoreError::Conflict(m)) => assert!(m.contains("already"), "{m}"),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(closed.len(), 1, "exactly one close applies");
    let stored = store
        .get_review(&run.tenant, &review.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.outcome, closed[0].outcome);
    assert_ne!(stored.status, ReviewStatus::Pending);
    let kinds = audit_kinds(store.as_ref(), &run).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == AuditEventKind::ReviewDecided)
            .count(),
        1
    );
    assert!(store.all_pending_reviews().await.unwrap().is_empty());
    let missing = store
        .record_gate_closed(
            &run.tenant,
            GateClosedStep {
                review_id: crate::review::ReviewId::generate(),
                outcome: ReviewOutcome::Cancelled,
                actor: "x".into(),
                event: Box::new(|_| StepEvent::new(AuditEventKind::ReviewCancelled, json!({}))),
            },
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

/// One session's whole turn: accept, reply with a call, the call, the answer, done.
async fn one_turn(store: Arc<dyn Store>, run: RunScope, n: usize) -> Result<(), StoreError> {
    let call = call(&format!("call_{n}"));
    store
        .record_accept(&run, accept(&format!("task {n}")))
        .await?;
    store
        .record_model_reply(&run, reply(ChatMessage::assistant(format!("on it {n}"))))
        .await?;
    store.record_tool_started(&run, started(&call)).await?;
    store
        .record_tool_finished(
            &run,
            finished(&call, ChatMessage::tool_result(&call, "done")),
        )
        .await?;
    store
        .record_model_reply(&run, reply(ChatMessage::assistant(format!("done {n}"))))
        .await?;
    store.record_turn_finished(&run, turn_finished()).await
}

async fn many_sessions_step_at_once_without_losing_a_sequence_number(subject: &Subject) {
    const SESSIONS: usize = 50;
    let store = &subject.store;
    let t = tenant("crowd");
    let mut runs: Vec<RunScope> = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        runs.push(scope(subject.store.as_ref(), "crowd", &format!("s:{n}")).await);
    }
    // A second turn on every session races its first one's successor for the seq.
    let tasks: Vec<_> = runs
        .iter()
        .enumerate()
        .flat_map(|(n, run)| {
            let second = RunScope {
                run_id: crate::domain::RunId::generate(),
                ..run.clone()
            };
            [
                tokio::spawn(one_turn(Arc::clone(store), run.clone(), n)),
                tokio::spawn(one_turn(Arc::clone(store), second, n + SESSIONS)),
            ]
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Each turn wrote 4 messages; each session holds 8 numbered 1..=8 in order, each
    // turn's own in the order it wrote them.
    for (n, run) in runs.iter().enumerate() {
        let history = store.history(&t, &run.session_key).await.unwrap();
        assert_eq!(
            history.iter().map(|m| m.seq).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>(),
            "{}",
            run.session_key
        );
        let mine: Vec<_> = history
            .iter()
            .filter(|m| m.run_id.as_ref() == Some(&run.run_id))
            .map(|m| m.message.clone())
            .collect();
        let call = call(&format!("call_{n}"));
        assert_eq!(
            mine,
            vec![
                ChatMessage::user(format!("task {n}")),
                ChatMessage::assistant(format!("on it {n}")),
                ChatMessage::tool_result(&call, "done"),
                ChatMessage::assistant(format!("done {n}")),
            ]
        );
        let session = store
            .get_session(&t, &run.session_key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.message_count, 8);
    }
    // 7 events a turn, 100 turns: one chain 1..=700, intact.
    let events = store.list_audit(&t, &AuditFilter::default()).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=7 * 2 * SESSIONS as i64).collect::<Vec<_>>()
    );
    let report = store.verify_audit(&t).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert_eq!(report.events_checked, 7 * 2 * SESSIONS as i64);
    assert!(store.running_runs(&t).await.unwrap().is_empty());
    let totals = store
        .usage_totals(&t, &crate::store::UsageWindow::default())
        .await
        .unwrap();
    assert_eq!(
        (totals.calls, totals.runs),
        (4 * SESSIONS as u64, 2 * SESSIONS as u64)
    );
}

/// A scheduled job's fire, given by several nodes at once and again later: one run,
/// queued, with one `turn_queued` event under the session's current epoch; the
/// session's holder then accepts and finishes it like any queued turn.
async fn a_turn_given_from_outside_is_taken_once_and_its_holder_runs_it(subject: &Subject) {
    let store = subject.store.clone();
    let held = scope(store.as_ref(), "acme", "cron:given").await;
    let run_id = RunId::new("run_0123456789abcdef0123456789abcdef").unwrap();
    let give = |store: Arc<dyn Store>| {
        let (tenant, key, run_id) = (
            held.tenant.clone(),
            held.session_key.clone(),
            run_id.clone(),
        );
        async move {
            let step = QueuedStep {
                input: "Check the queue.".into(),
                event: StepEvent::new(AuditEventKind::TurnQueued, json!({"origin": "cron"})),
            };
            store
                .enqueue_turn(&tenant, &key, &run_id, "cron:job", step)
                .await
        }
    };
    let tries: Vec<_> = (0..6).map(|_| tokio::spawn(give(store.clone()))).collect();
    let mut taken = 0;
    for attempt in tries {
        if attempt.await.unwrap().unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1, "six givers at once: the store took it once");
    assert!(
        !give(store.clone()).await.unwrap(),
        "given again later: refused"
    );
    let run = store.get_run(&held.tenant, &run_id).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.input.as_str()),
        (RunStatus::Queued, "Check the queue.")
    );
    let events = store
        .list_audit(&held.tenant, &AuditFilter::default())
        .await
        .unwrap();
    let queued: Vec<_> = events
        .iter()
        .filter(|e| e.kind == AuditEventKind::TurnQueued)
        .collect();
    assert_eq!(queued.len(), 1, "{events:?}");
    assert_eq!(queued[0].actor, "cron:job");
    assert_eq!(queued[0].epoch, Some(held.epoch.get()));
    // The holder takes it as its own queued turn.
    let own = RunScope {
        run_id: run_id.clone(),
        ..held.clone()
    };
    store
        .record_accept(&own, accept("Check the queue."))
        .await
        .unwrap();
    store
        .record_turn_finished(&own, turn_finished())
        .await
        .unwrap();
    let run = store.get_run(&held.tenant, &run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(
        !give(store.clone()).await.unwrap(),
        "a finished run is not given again"
    );
}
