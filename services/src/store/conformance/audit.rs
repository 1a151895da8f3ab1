//! The audit chain: appends, listing, the database's refusal to change it, and
//! tamper detection.

use std::sync::Arc;

use serde_json::json;

use super::harness::{Subject, conformance};
use super::{accept, event, scope, tenant};
use crate::domain::{RunId, Usage};
use crate::store::{
    AuditEventKind, AuditFilter, AuditKey, RunStatus, StepEvent, TurnFinishedStep, verify_export,
};

/// Many sessions step at once, each into a chain of its own under its lease's epoch;
/// what is not yet in a checkpoint is counted, a seal names every moved head, and
/// deleting one session's newest event is then found.
async fn sessions_chain_apart_and_a_seal_names_every_head(subject: &Subject) {
    let store = &subject.store;
    store.set_audit_key(AuditKey::derive(b"the conformance suite's master key"));
    let mut tasks = Vec::new();
    for n in 0..12 {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let run = scope(store.as_ref(), "chains", &format!("chain:{n}")).await;
            store.record_accept(&run, accept("hello")).await.unwrap();
            run
        }));
    }
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await.unwrap());
    }
    let t = tenant("chains");
    let report = store.verify_audit(&t).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert_eq!((report.events_checked, report.chains), (12, 12));
    assert_eq!(report.unsealed, 12, "an accept ends no unit of work");
    assert_eq!(
        store.seal_audit().await.unwrap(),
        1,
        "one checkpoint for the tenant"
    );
    assert_eq!(store.seal_audit().await.unwrap(), 0, "nothing moved since");
    let report = store.verify_audit(&t).await.unwrap();
    assert_eq!((report.unsealed, report.checkpoints_checked), (0, 1));

    for run in &runs {
        let finished = TurnFinishedStep {
            status: RunStatus::Completed,
            content: Some("bye".into()),
            usage: Usage::default(),
            event: StepEvent::new(AuditEventKind::TurnFinished, json!({"status": "completed"})),
        };
        store.record_turn_finished(run, finished).await.unwrap();
    }
    store.seal_audit().await.unwrap();
    let report = store.verify_audit(&t).await.unwrap();
    assert_eq!((report.first_broken, report.unsealed), (None, 0));
    let events = store.list_audit(&t, &AuditFilter::default()).await.unwrap();
    for event in &events {
        let run = runs
            .iter()
            .find(|r| Some(&r.session_key) == event.session_key.as_ref())
            .unwrap();
        assert_eq!(
            event.epoch,
            Some(run.epoch.get()),
            "written under its lease"
        );
    }
    let newest = events
        .iter()
        .rfind(|e| e.kind == AuditEventKind::TurnFinished)
        .unwrap();
    assert_eq!(newest.chain_seq, Some(2));

    let drop_guard = if subject.is_postgres() {
        "DROP TRIGGER audit_events_no_update_delete ON audit_events"
    } else {
        "DROP TRIGGER audit_events_no_delete"
    };
    subject.execute(None, drop_guard).await.unwrap();
    let delete = format!("DELETE FROM audit_events WHERE seq = {}", newest.seq);
    assert_eq!(subject.execute(Some("chains"), &delete).await.unwrap(), 1);
    let (_, why) = store.verify_audit(&t).await.unwrap().first_broken.unwrap();
    let session = newest.session_key.as_ref().unwrap();
    assert!(
        why.contains(&format!("event 2 of session {session}, which is gone")),
        "{why}"
    );
}

conformance!(
    sessions_chain_apart_and_a_seal_names_every_head,
    concurrent_appends_form_one_unbroken_chain,
    audit_rows_cannot_be_changed_and_tampering_is_named,
    listing_filters_and_keeps_the_newest_when_limited,
);

async fn concurrent_appends_form_one_unbroken_chain(subject: &Subject) {
    let store = &subject.store;
    let t = tenant("busy");
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let (store, t) = (Arc::clone(store), t.clone());
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
    let events = store.list_audit(&t, &AuditFilter::default()).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    // The export of the chain checks alone, as `facio audit verify --file` does.
    let export: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    let checked = verify_export(export.as_bytes()).unwrap();
    assert_eq!(checked.first_broken, None);
    assert_eq!(checked.events.get("busy"), Some(&50));
    assert_eq!(checked.from_genesis, vec!["busy".to_owned()]);
}

async fn audit_rows_cannot_be_changed_and_tampering_is_named(subject: &Subject) {
    let store = &subject.store;
    let t = tenant("t");
    for n in 1..=5 {
        store
            .append_audit(&t, event(AuditEventKind::ModelCall, n))
            .await
            .unwrap();
    }
    let refused = |result: Result<u64, sqlx::Error>| {
        let text = result.unwrap_err().to_string();
        assert!(text.contains("append-only"), "{text}");
    };
    refused(
        subject
            .execute(
                Some("t"),
                "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3",
            )
            .await,
    );
    refused(
        subject
            .execute(Some("t"), "DELETE FROM audit_events WHERE seq = 3")
            .await,
    );
    if subject.is_postgres() {
        refused(subject.execute(Some("t"), "TRUNCATE audit_events").await);
    }
    assert_eq!(store.verify_audit(&t).await.unwrap().first_broken, None);
    assert_eq!(store.verify_audit(&t).await.unwrap().events_checked, 5);

    // The owner can drop the guard; the chain still names the changed event.
    let drop_guard = if subject.is_postgres() {
        "DROP TRIGGER audit_events_no_update_delete ON audit_events"
    } else {
        "DROP TRIGGER audit_events_no_update"
    };
    subject.execute(None, drop_guard).await.unwrap();
    let changed = subject
        .execute(
            Some("t"),
            "UPDATE audit_events SET data = '{\"n\":99}' WHERE seq = 3",
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let report = store.verify_audit(&t).await.unwrap();
    let (seq, reason) = report.first_broken.unwrap();
    assert_eq!(seq, 3);
    assert!(reason.contains("changed"), "{reason}");

    // A relinked hash is caught at the next event.
    subject
        .execute(
            Some("t"),
            "UPDATE audit_events SET data = '{\"n\":3,\"text\":\"café\"}', \
             hash = 'f00d' WHERE seq = 3",
        )
        .await
        .unwrap();
    let (seq, _) = store.verify_audit(&t).await.unwrap().first_broken.unwrap();
    assert_eq!(seq, 3);
}

async fn listing_filters_and_keeps_the_newest_when_limited(subject: &Subject) {
    let store = &subject.store;
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
        if n == 6 {
            e.actor = "alice".into();
        }
        store.append_audit(&t, e).await.unwrap();
    }
    let seqs = |filter: AuditFilter| {
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
    let by_run = AuditFilter {
        run_id: Some(run.clone()),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(by_run).await, vec![4, 5, 6]);
    let by_kind = AuditFilter {
        kind: Some(AuditEventKind::ToolCall),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(by_kind).await, vec![2, 4, 6]);
    let newest = AuditFilter {
        limit: Some(2),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(newest).await, vec![5, 6]);
    // Several kinds, text in the data (as stored: compact JSON), actors, pages by seq.
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
    let alice = AuditFilter {
        actor: Some("alice".into()),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(alice).await, vec![6]);
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
    // Time windows: everything is after a minute ago, nothing before it.
    let minute_ago = chrono::Utc::now() - chrono::Duration::minutes(1);
    let since = AuditFilter {
        since: Some(minute_ago),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(since).await.len(), 6);
    let until = AuditFilter {
        until: Some(minute_ago),
        ..AuditFilter::default()
    };
    assert!(seqs(until).await.is_empty());
    // The data reads back exactly as it was hashed.
    let first = &store.list_audit(&t, &AuditFilter::default()).await.unwrap()[0];
    assert_eq!(first.data, event(AuditEventKind::ModelCall, 1).data);
}
