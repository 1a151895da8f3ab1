use std::sync::Arc;

use serde_json::json;

use super::SqliteStore;
use crate::domain::{ChatMessage, RunId, SessionKey, TenantId, Usage};
use crate::store::{
    AuditEventKind, AuditFilter, AuditRepository, NewAuditEvent, RunRepository, RunStatus,
    SessionRepository, StoreError, ToolCallStatus,
};

async fn memory() -> SqliteStore {
    SqliteStore::connect("sqlite::memory:").await.unwrap()
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn key(name: &str) -> SessionKey {
    SessionKey::new(name).unwrap()
}

fn event(kind: AuditEventKind, n: i64) -> NewAuditEvent {
    NewAuditEvent {
        kind,
        session_key: Some(key("s")),
        run_id: None,
        actor: "agent".into(),
        data: json!({"n": n, "text": "caf\u{e9}"}),
    }
}

#[tokio::test]
async fn history_keeps_order_and_sessions_are_created_on_first_append() {
    let store = memory().await;
    let (t, k) = (tenant("acme"), key("api:default"));
    let run = RunId::generate();
    let seqs = store
        .append_messages(
            &t,
            &k,
            Some(&run),
            &[ChatMessage::user("hi"), ChatMessage::assistant("hello")],
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![1, 2]);
    store
        .append_messages(&t, &k, None, &[ChatMessage::user("again")])
        .await
        .unwrap();
    let history = store.history(&t, &k).await.unwrap();
    let texts: Vec<_> = history.iter().map(|m| m.message.clone()).collect();
    assert_eq!(
        texts,
        vec![
            ChatMessage::user("hi"),
            ChatMessage::assistant("hello"),
            ChatMessage::user("again")
        ]
    );
    assert_eq!(history[0].run_id.as_ref(), Some(&run));
    assert_eq!(history[2].run_id, None);
    let session = store.get_session(&t, &k).await.unwrap().unwrap();
    assert_eq!(session.message_count, 3);
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let store = memory().await;
    let (a, b, k) = (tenant("a"), tenant("b"), key("shared:name"));
    store
        .append_messages(&a, &k, None, &[ChatMessage::user("secret of a")])
        .await
        .unwrap();
    let run = RunId::generate();
    store.create_run(&a, &k, &run, "x").await.unwrap();
    store
        .append_audit(&a, event(AuditEventKind::TurnStarted, 1))
        .await
        .unwrap();

    assert!(store.history(&b, &k).await.unwrap().is_empty());
    assert!(store.get_session(&b, &k).await.unwrap().is_none());
    assert!(store.list_sessions(&b, 10).await.unwrap().is_empty());
    assert!(store.get_run(&b, &run).await.unwrap().is_none());
    assert!(
        store
            .list_audit(&b, &AuditFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .finish_run(&b, &run, RunStatus::Completed, None, Usage::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.audit_tenants().await.unwrap(), vec![a]);
}

#[tokio::test]
async fn a_run_finishes_once_with_its_usage() {
    let store = memory().await;
    let (t, k, run) = (tenant("t"), key("k"), RunId::generate());
    let created = store.create_run(&t, &k, &run, "do it").await.unwrap();
    assert_eq!(created.status, RunStatus::Running);
    assert_eq!(store.running_runs(&t).await.unwrap().len(), 1);
    assert!(matches!(
        store.create_run(&t, &k, &run, "again").await,
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
}

#[tokio::test]
async fn tool_calls_move_from_started_to_their_outcome() {
    let store = memory().await;
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
    assert_eq!(
        (calls[1].status, calls[1].result.as_deref()),
        (ToolCallStatus::Started, None)
    );
    assert!(
        store
            .tool_call_finished(&t, &run, "call_1", ToolCallStatus::Failed, "x")
            .await
            .is_err()
    );
    // A model that reuses a call id in the same turn gets a second row, not an error.
    store
        .tool_call_started(&t, &run, "call_1", "exec", "{}")
        .await
        .unwrap();
    assert_eq!(store.tool_calls(&t, &run).await.unwrap().len(), 3);
}

#[tokio::test]
async fn concurrent_appends_form_one_unbroken_chain() {
    let store = Arc::new(memory().await);
    let t = tenant("busy");
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                store
                    .append_audit(&t, event(AuditEventKind::ToolCall, n))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let report = store.verify_audit(&t).await.unwrap();
    assert_eq!((report.events_checked, report.first_broken), (50, None));
    let seqs: Vec<i64> = store
        .list_audit(&t, &AuditFilter::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_and_tampering_is_named() {
    let store = memory().await;
    let t = tenant("t");
    for n in 1..=5 {
        store
            .append_audit(&t, event(AuditEventKind::ModelCall, n))
            .await
            .unwrap();
    }
    let update = sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
        .execute(store.pool())
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_events WHERE seq = 3")
        .execute(store.pool())
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(store.verify_audit(&t).await.unwrap().first_broken, None);

    sqlx::query("DROP TRIGGER audit_events_no_update")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET data = '{\"n\":99}' WHERE seq = 3")
        .execute(store.pool())
        .await
        .unwrap();
    let report = store.verify_audit(&t).await.unwrap();
    let (seq, reason) = report.first_broken.unwrap();
    assert_eq!(seq, 3);
    assert!(reason.contains("changed"), "{reason}");
}

#[tokio::test]
async fn listing_filters_and_keeps_the_newest_when_limited() {
    let store = memory().await;
    let t = tenant("t");
    let run = RunId::generate();
    for n in 1..=6 {
        let mut e = event(
            if n % 2 == 0 {
                AuditEventKind::ToolCall
            } else {
                AuditEventKind::ModelCall
            },
            n,
        );
        if n > 3 {
            e.run_id = Some(run.clone());
        }
        store.append_audit(&t, e).await.unwrap();
    }
    let by_run = AuditFilter {
        run_id: Some(run.clone()),
        ..AuditFilter::default()
    };
    assert_eq!(
        store
            .list_audit(&t, &by_run)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    let by_kind = AuditFilter {
        kind: Some(AuditEventKind::ToolCall),
        ..AuditFilter::default()
    };
    assert_eq!(
        store
            .list_audit(&t, &by_kind)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![2, 4, 6]
    );
    let newest = AuditFilter {
        limit: Some(2),
        ..AuditFilter::default()
    };
    assert_eq!(
        store
            .list_audit(&t, &newest)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![5, 6]
    );
    let seqs = |filter: AuditFilter| {
        let store = &store;
        let t = &t;
        async move {
            store
                .list_audit(t, &filter)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    // Several kinds, text in the data, and pages by seq.
    let both = AuditFilter {
        kinds: vec![AuditEventKind::ToolCall, AuditEventKind::ModelCall],
        ..AuditFilter::default()
    };
    assert_eq!(seqs(both).await, vec![1, 2, 3, 4, 5, 6]);
    let text = AuditFilter {
        text: Some("\"n\":5".into()),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(text).await, vec![5]);
    let nobody = AuditFilter {
        actor: Some("someone else".into()),
        ..AuditFilter::default()
    };
    assert!(seqs(nobody).await.is_empty());
    let page = |after| AuditFilter {
        after: Some(after),
        limit: Some(4),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(page(0)).await, vec![1, 2, 3, 4]);
    assert_eq!(seqs(page(4)).await, vec![5, 6]);
}

#[tokio::test]
async fn a_file_database_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/facio.db").display()
    );
    let (t, k) = (tenant("t"), key("k"));
    {
        let store = SqliteStore::connect(&url).await.unwrap();
        store
            .append_messages(&t, &k, None, &[ChatMessage::user("remember me")])
            .await
            .unwrap();
        store
            .append_audit(&t, event(AuditEventKind::TurnStarted, 1))
            .await
            .unwrap();
        store.pool().close().await;
    }
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(
        store.history(&t, &k).await.unwrap()[0].message,
        ChatMessage::user("remember me")
    );
    assert_eq!(store.verify_audit(&t).await.unwrap().events_checked, 1);
    assert!(matches!(
        SqliteStore::connect("mysql://x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
}

fn approval_request() -> crate::review::ReviewRequest {
    crate::review::request_from_tool_call(
        "ask_approval",
        &json!({"title": "Deploy?", "description": "ship v2"}),
    )
    .unwrap()
}

#[tokio::test]
async fn a_review_closes_exactly_once_and_lists_by_status() {
    use crate::review::{ReviewId, ReviewOutcome};
    use crate::store::{NewReview, ReviewFilter, ReviewRepository, ReviewStatus};

    let store = memory().await;
    let (t, k, run) = (tenant("t"), key("k"), RunId::generate());
    store.create_run(&t, &k, &run, "deploy").await.unwrap();
    assert!(
        store
            .set_run_status(&t, &run, RunStatus::Running, RunStatus::AwaitingReview)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_run_status(&t, &run, RunStatus::Running, RunStatus::AwaitingReview)
            .await
            .unwrap()
    );
    let id = ReviewId::generate();
    let new = NewReview {
        id: id.clone(),
        session_key: k.clone(),
        run_id: run.clone(),
        call_id: "call_1".into(),
        tool: "exec".into(),
        origin: "api".into(),
        request: approval_request(),
        context: json!({"arguments": {"command": "deploy"}}),
        expires_at: chrono::Utc::now() + chrono::Duration::hours(24),
    };
    let created = store.create_review(&t, new).await.unwrap();
    assert_eq!(created.status, ReviewStatus::Pending);
    assert_eq!(created.request, approval_request());
    assert_eq!(store.all_pending_reviews().await.unwrap().len(), 1);
    assert!(
        store
            .get_review(&tenant("other"), &id)
            .await
            .unwrap()
            .is_none()
    );

    let outcome = ReviewOutcome::Decided {
        response: json!({"selectedOption": "approve"}),
        reviewer: Some("alice".into()),
        comment: None,
    };
    let closed = store.close_review(&t, &id, &outcome).await.unwrap();
    assert_eq!(
        (closed.status, closed.outcome.as_ref()),
        (ReviewStatus::Decided, Some(&outcome))
    );
    let again = store.close_review(&t, &id, &ReviewOutcome::TimedOut).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("already decided")),
        "{again:?}"
    );
    assert_eq!(
        store.get_review(&t, &id).await.unwrap().unwrap().outcome,
        Some(outcome)
    );

    let pending = ReviewFilter {
        status: Some(ReviewStatus::Pending),
        ..ReviewFilter::default()
    };
    assert!(store.list_reviews(&t, &pending).await.unwrap().is_empty());
    let decided = ReviewFilter {
        status: Some(ReviewStatus::Decided),
        ..ReviewFilter::default()
    };
    assert_eq!(store.list_reviews(&t, &decided).await.unwrap().len(), 1);
    assert_eq!(
        store
            .review_for_call(&t, &run, "call_1")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(id)
    );
    assert!(store.all_pending_reviews().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_policy_document_is_replaced_per_tenant() {
    use crate::store::ReviewRepository;
    let store = memory().await;
    let t = tenant("t");
    assert_eq!(store.get_policy(&t).await.unwrap(), None);
    store
        .put_policy(&t, &json!({"rules": [], "enabled": true}))
        .await
        .unwrap();
    store
        .put_policy(&t, &json!({"rules": [], "enabled": false}))
        .await
        .unwrap();
    assert_eq!(
        store.get_policy(&t).await.unwrap(),
        Some(json!({"rules": [], "enabled": false}))
    );
    assert_eq!(store.get_policy(&tenant("u")).await.unwrap(), None);
}
