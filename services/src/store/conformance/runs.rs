//! Runs, tool calls and what recovery reads after a crash.

use serde_json::json;

use super::harness::{Subject, conformance};
use super::{accept, key, new_review, scope, tenant};
use crate::domain::{RunId, Usage};
use crate::store::{
    AuditEventKind, GateOpenedStep, ReviewStatus, RunFilter, RunStatus, StepEvent, StoreError,
    ToolCallStatus, ToolStartedStep,
};

conformance!(
    runs_are_listed_newest_first_by_session_and_state_a_page_at_a_time,
    a_run_finishes_once_with_its_usage,
    tool_calls_move_from_started_to_their_outcome,
    recovery_finds_running_runs_calls_in_progress_and_pending_reviews,
);

async fn a_run_finishes_once_with_its_usage(subject: &Subject) {
    let store = &subject.store;
    let (t, k, run) = (tenant("t"), key("k"), RunId::generate());
    let created = store.create_run(&t, &k, &run, "do it").await.unwrap();
    assert_eq!(created.status, RunStatus::Running);
    assert_eq!(created.input, "do it");
    assert_eq!(store.running_runs(&t).await.unwrap().len(), 1);
    assert!(matches!(
        store.create_run(&t, &k, &run, "again").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .finish_run(&t, &run, RunStatus::Running, None, Usage::default())
            .await,
        Err(StoreError::Conflict(_))
    ));

    let usage = Usage {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
    };
    store
        .finish_run(&t, &run, RunStatus::Completed, Some("done"), usage)
        .await
        .unwrap();
    let finished = store.get_run(&t, &run).await.unwrap().unwrap();
    assert_eq!(
        (finished.status, finished.content.as_deref(), finished.usage),
        (RunStatus::Completed, Some("done"), usage)
    );
    assert!(finished.finished_at.is_some());
    assert!(store.running_runs(&t).await.unwrap().is_empty());

    let again = store
        .finish_run(&t, &run, RunStatus::Failed, None, Usage::default())
        .await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("already completed")),
        "{again:?}"
    );
    let missing = store
        .finish_run(&t, &RunId::generate(), RunStatus::Failed, None, usage)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

async fn tool_calls_move_from_started_to_their_outcome(subject: &Subject) {
    let store = &subject.store;
    let (t, k, run) = (tenant("t"), key("k"), RunId::generate());
    store.create_run(&t, &k, &run, "x").await.unwrap();
    store
        .tool_call_started(&t, &run, "call_1", "exec", "{\"command\":\"ls\"}")
        .await
        .unwrap();
    store
        .tool_call_started(&t, &run, "call_2", "read_file", "{}")
        .await
        .unwrap();
    store
        .tool_call_finished(&t, &run, "call_1", ToolCallStatus::Succeeded, "ok")
        .await
        .unwrap();
    let calls = store.tool_calls(&t, &run).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].status, calls[0].result.as_deref()),
        (ToolCallStatus::Succeeded, Some("ok"))
    );
    assert_eq!(calls[0].arguments, "{\"command\":\"ls\"}");
    assert_eq!(
        (calls[1].status, calls[1].result.as_deref()),
        (ToolCallStatus::Started, None)
    );
    let twice = store
        .tool_call_finished(&t, &run, "call_1", ToolCallStatus::Failed, "x")
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    // A model that reuses a call id in the same turn gets a second row, not an error.
    store
        .tool_call_started(&t, &run, "call_1", "exec", "{}")
        .await
        .unwrap();
    assert_eq!(store.tool_calls(&t, &run).await.unwrap().len(), 3);
    let orphan = store
        .tool_call_started(&t, &RunId::generate(), "call_9", "exec", "{}")
        .await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
}

async fn recovery_finds_running_runs_calls_in_progress_and_pending_reviews(subject: &Subject) {
    let store = &subject.store;
    // Tenant a: one run mid-call, one waiting on a review. Tenant b: one waiting too.
    let busy = scope(subject.store.as_ref(), "a", "busy").await;
    store.record_accept(&busy, accept("work")).await.unwrap();
    store
        .record_tool_started(
            &busy,
            ToolStartedStep {
                call_id: "call_1".into(),
                tool: "exec".into(),
                arguments: "{}".into(),
                event: None,
            },
        )
        .await
        .unwrap();
    let mut reviews = Vec::new();
    for run in [
        scope(subject.store.as_ref(), "a", "waiting").await,
        scope(subject.store.as_ref(), "b", "waiting").await,
    ] {
        store.record_accept(&run, accept("deploy")).await.unwrap();
        let review = store
            .record_gate_opened(
                &run,
                GateOpenedStep {
                    review: new_review(&run, "call_1"),
                    events: vec![StepEvent::new(
                        AuditEventKind::ReviewRequested,
                        json!({"tool": "exec"}),
                    )],
                },
            )
            .await
            .unwrap();
        assert_eq!(review.status, ReviewStatus::Pending);
        let waiting = store
            .get_run(&run.tenant, &run.run_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(waiting.status, RunStatus::AwaitingReview);
        reviews.push(review);
    }

    let running = store.running_runs(&tenant("a")).await.unwrap();
    assert_eq!(
        running.iter().map(|r| &r.run_id).collect::<Vec<_>>(),
        vec![&busy.run_id]
    );
    let calls = store.tool_calls(&busy.tenant, &busy.run_id).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, ToolCallStatus::Started);
    // Pending reviews of every tenant, soonest to expire first.
    let mut pending: Vec<_> = store
        .all_pending_reviews()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.tenant, r.id))
        .collect();
    pending.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    assert_eq!(
        pending,
        reviews
            .iter()
            .map(|r| (r.tenant.clone(), r.id.clone()))
            .collect::<Vec<_>>()
    );
    // A gate on a run that does not exist opens nothing.
    let ghost = scope(subject.store.as_ref(), "a", "ghost").await;
    let refused = store
        .record_gate_opened(
            &ghost,
            GateOpenedStep {
                review: new_review(&ghost, "call_1"),
                events: vec![],
            },
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
}

async fn runs_are_listed_newest_first_by_session_and_state_a_page_at_a_time(subject: &Subject) {
    let store = &subject.store;
    let (t, other) = (tenant("t"), tenant("o"));
    let mut made = Vec::new();
    for (i, session) in ["a", "b", "a", "a", "b"].iter().enumerate() {
        let run = RunId::generate();
        store
            .create_run(&t, &key(session), &run, &format!("turn {i}"))
            .await
            .unwrap();
        made.push(run);
    }
    store
        .create_run(&other, &key("a"), &RunId::generate(), "elsewhere")
        .await
        .unwrap();
    store
        .finish_run(
            &t,
            &made[0],
            RunStatus::Completed,
            Some("done"),
            Usage::default(),
        )
        .await
        .unwrap();
    let ids = |runs: &[crate::store::RunRecord]| {
        runs.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>()
    };

    let all = RunFilter {
        limit: 10,
        ..RunFilter::default()
    };
    let (runs, total) = store.list_runs(&t, &all).await.unwrap();
    assert_eq!(total, 5, "another tenant's run is not counted");
    assert_eq!(
        ids(&runs),
        made.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first"
    );

    let of_a = RunFilter {
        session_key: Some(key("a")),
        limit: 2,
        ..RunFilter::default()
    };
    let (page, total) = store.list_runs(&t, &of_a).await.unwrap();
    assert_eq!(
        (ids(&page), total),
        (vec![made[3].clone(), made[2].clone()], 3)
    );
    let next = RunFilter {
        before: page.last().map(|r| r.run_id.clone()),
        ..of_a.clone()
    };
    let (page, total) = store.list_runs(&t, &next).await.unwrap();
    assert_eq!(
        (ids(&page), total),
        (vec![made[0].clone()], 3),
        "the last page"
    );

    let done = RunFilter {
        statuses: vec![RunStatus::Completed, RunStatus::Failed],
        limit: 10,
        ..RunFilter::default()
    };
    let (runs, total) = store.list_runs(&t, &done).await.unwrap();
    assert_eq!((ids(&runs), total), (vec![made[0].clone()], 1));
}
