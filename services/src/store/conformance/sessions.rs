//! Sessions, history, deletion and tenant isolation.

use super::harness::{Subject, conformance};
use super::{event, key, tenant};
use crate::domain::{ChatMessage, RunId, Usage};
use crate::store::{AuditEventKind, AuditFilter, RunStatus, StoreError};

conformance!(
    history_keeps_order_and_sessions_are_created_on_first_append,
    tenants_never_see_each_other,
    a_session_is_deleted_whole_and_never_while_a_run_is_active,
);

async fn history_keeps_order_and_sessions_are_created_on_first_append(subject: &Subject) {
    let store = &subject.store;
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
    let more = store
        .append_messages(&t, &k, None, &[ChatMessage::user("again \u{0}\u{1F600}")])
        .await
        .unwrap();
    assert_eq!(more, vec![3]);
    let history = store.history(&t, &k).await.unwrap();
    let texts: Vec<_> = history.iter().map(|m| m.message.clone()).collect();
    assert_eq!(
        texts,
        vec![
            ChatMessage::user("hi"),
            ChatMessage::assistant("hello"),
            ChatMessage::user("again \u{0}\u{1F600}")
        ]
    );
    assert_eq!(history[0].run_id.as_ref(), Some(&run));
    assert_eq!(history[2].run_id, None);
    let session = store.get_session(&t, &k).await.unwrap().unwrap();
    assert_eq!(session.message_count, 3);

    // Most recently active first, then by key.
    let other = key("api:other");
    store.ensure_session(&t, &other).await.unwrap();
    let listed: Vec<_> = store
        .list_sessions(&t, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(listed, vec![other.clone(), k.clone()]);
    assert_eq!(store.list_sessions(&t, 1).await.unwrap().len(), 1);
    let again = store.ensure_session(&t, &other).await.unwrap();
    assert_eq!(again.message_count, 0);
}

async fn tenants_never_see_each_other(subject: &Subject) {
    let store = &subject.store;
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
    assert!(store.running_runs(&b).await.unwrap().is_empty());
    assert!(
        store
            .list_audit(&b, &AuditFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.verify_audit(&b).await.unwrap().events_checked, 0);
    assert!(matches!(
        store
            .finish_run(&b, &run, RunStatus::Completed, None, Usage::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!store.delete_session(&b, &k, None).await.unwrap());
    assert_eq!(store.audit_tenants().await.unwrap(), vec![a.clone()]);

    if subject.is_postgres() {
        // Row-level security: the store's own role, querying without the tenant
        // filter, sees only the tenant its transaction set, and nothing without one.
        let all = "SELECT COUNT(*) FROM messages";
        assert_eq!(subject.count(Some("a"), all).await, 1);
        assert_eq!(subject.count(Some("b"), all).await, 0);
        assert_eq!(subject.count(None, all).await, 0);
        for table in ["sessions", "runs", "audit_events"] {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            assert_eq!(subject.count(Some("b"), &sql).await, 0, "{table}");
            assert_eq!(subject.count(None, &sql).await, 0, "{table}");
            assert_eq!(subject.count(Some("a"), &sql).await, 1, "{table}");
        }
        // Nor can it write into another tenant's rows, or write rows of a tenant it
        // did not set.
        let changed = subject
            .execute(Some("b"), "UPDATE runs SET input = 'stolen'")
            .await
            .unwrap();
        assert_eq!(changed, 0);
        let forged = subject
            .execute(
                Some("b"),
                "INSERT INTO sessions (tenant_id, session_key, created_at, updated_at) \
                 VALUES ('a', 'forged', now(), now())",
            )
            .await;
        let text = forged.unwrap_err().to_string();
        assert!(text.contains("row-level security"), "{text}");
    }
}

async fn a_session_is_deleted_whole_and_never_while_a_run_is_active(subject: &Subject) {
    let store = &subject.store;
    let (t, k, run) = (tenant("t"), key("doomed"), RunId::generate());
    store.create_run(&t, &k, &run, "x").await.unwrap();
    store
        .append_messages(&t, &k, Some(&run), &[ChatMessage::user("x")])
        .await
        .unwrap();
    store
        .tool_call_started(&t, &run, "call_1", "exec", "{}")
        .await
        .unwrap();
    let refused = store.delete_session(&t, &k, None).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    store
        .finish_run(&t, &run, RunStatus::Failed, None, Usage::default())
        .await
        .unwrap();
    store
        .append_audit(&t, event(AuditEventKind::TurnFinished, 1))
        .await
        .unwrap();
    assert!(store.delete_session(&t, &k, None).await.unwrap());
    assert!(store.get_session(&t, &k).await.unwrap().is_none());
    assert!(store.history(&t, &k).await.unwrap().is_empty());
    assert!(store.get_run(&t, &run).await.unwrap().is_none());
    assert!(store.tool_calls(&t, &run).await.unwrap().is_empty());
    assert!(!store.delete_session(&t, &k, None).await.unwrap());
    // The audit log stays.
    assert_eq!(store.verify_audit(&t).await.unwrap().events_checked, 1);
}
