//! Session leases and epochs: a stale owner is fenced off and writes nothing; a
//! live lease is not taken; the sealed audit log finds a rewrite with every hash
//! recomputed and a cut tail, on every backend.

use std::time::Duration;

use super::harness::{Subject, conformance};
use super::{accept, event, key, new_review, reply, scope, tenant};
use crate::domain::{ChatMessage, NodeId};
use crate::review::ReviewOutcome;
use crate::store::{
    AuditEventKind, AuditKey, GateClosedStep, GateOpenedStep, ReviewStatus, StepEvent, StoreError,
};

conformance!(
    the_heartbeat_keeps_an_expired_lease_but_not_a_released_one,
    a_review_times_out_only_past_its_deadline,
    a_stale_epoch_is_fenced_and_writes_nothing,
    a_sealed_log_finds_a_recomputed_rewrite_and_a_cut_tail,
    a_draining_node_gives_back_every_lease_it_holds_and_no_other,
    a_live_lease_of_a_gone_node_is_taken_and_fences_it,
);

async fn a_live_lease_of_a_gone_node_is_taken_and_fences_it(subject: &Subject) {
    let store = subject.store.as_ref();
    let stale = scope(store, "acme", "gone").await;
    store.record_accept(&stale, accept("first")).await.unwrap();
    let (other, bystander) = (
        NodeId::new("survivor").unwrap(),
        NodeId::new("bystander").unwrap(),
    );
    let ttl = Duration::from_secs(60);
    let holder = NodeId::new("conformance").unwrap();
    // Naming another node as gone takes nothing: the live lease stays its holder's.
    let kept = store
        .take_lease(
            &stale.tenant,
            &stale.session_key,
            &other,
            Some(&bystander),
            ttl,
        )
        .await;
    assert!(
        matches!(kept, Err(StoreError::LeaseHeld { ref owner, .. }) if owner == "conformance"),
        "{kept:?}"
    );
    // Its holder named as gone: taken at once, long before it runs out, at a newer
    // epoch that fences the old holder's next write.
    let taken = store
        .take_lease(
            &stale.tenant,
            &stale.session_key,
            &other,
            Some(&holder),
            ttl,
        )
        .await
        .unwrap();
    assert_eq!(taken.owner, other);
    assert!(taken.epoch > stale.epoch);
    let refused = store
        .record_model_reply(&stale, reply(ChatMessage::assistant("late")))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
}

async fn a_draining_node_gives_back_every_lease_it_holds_and_no_other(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = tenant("drain");
    let (mine, theirs) = (
        NodeId::new("draining").unwrap(),
        NodeId::new("staying").unwrap(),
    );
    let ttl = Duration::from_secs(60);
    for s in ["d1", "d2"] {
        store.acquire_lease(&t, &key(s), &mine, ttl).await.unwrap();
    }
    store
        .acquire_lease(&t, &key("s1"), &theirs, ttl)
        .await
        .unwrap();
    assert_eq!(store.release_leases(&mine).await.unwrap(), 2);
    assert_eq!(
        store.release_leases(&mine).await.unwrap(),
        0,
        "nothing left to give back"
    );
    // Another node takes a given-back session at once, at a newer epoch; the other
    // node's lease is untouched.
    let before = store.get_lease(&t, &key("d1")).await.unwrap().unwrap();
    let taken = store
        .acquire_lease(&t, &key("d1"), &theirs, ttl)
        .await
        .unwrap();
    assert!(taken.epoch > before.epoch);
    let held = store.acquire_lease(&t, &key("s1"), &mine, ttl).await;
    assert!(
        matches!(held, Err(StoreError::LeaseHeld { .. })),
        "{held:?}"
    );
}

async fn a_stale_epoch_is_fenced_and_writes_nothing(subject: &Subject) {
    let store = subject.store.as_ref();
    let stale = scope(store, "acme", "fence").await;
    store.record_accept(&stale, accept("first")).await.unwrap();
    let other = NodeId::new("node-b").unwrap();
    let held = store
        .acquire_lease(
            &stale.tenant,
            &stale.session_key,
            &other,
            Duration::from_secs(60),
        )
        .await;
    assert!(
        matches!(held, Err(StoreError::LeaseHeld { ref owner, .. }) if owner == "conformance"),
        "{held:?}"
    );
    // The first owner gives it back; node-b takes it at a newer epoch.
    let lease = store
        .get_lease(&stale.tenant, &stale.session_key)
        .await
        .unwrap()
        .unwrap();
    store.release_lease(&lease).await.unwrap();
    let taken = store
        .acquire_lease(
            &stale.tenant,
            &stale.session_key,
            &other,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(taken.epoch > stale.epoch);
    let audit_before = store
        .list_audit(&stale.tenant, &Default::default())
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
    let renewed = store.renew_lease(&lease, Duration::from_secs(60)).await;
    assert!(
        matches!(renewed, Err(StoreError::Fenced { .. })),
        "{renewed:?}"
    );
    assert_eq!(
        store
            .history(&stale.tenant, &stale.session_key)
            .await
            .unwrap()
            .len(),
        1,
        "the stale reply left no message"
    );
    assert_eq!(
        store
            .list_audit(&stale.tenant, &Default::default())
            .await
            .unwrap()
            .len(),
        audit_before
    );
    // The node heartbeat renews node-b's lease and not a stale one.
    assert_eq!(
        store
            .renew_leases(&other, Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
    let now = store
        .get_lease(&stale.tenant, &key("fence"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.owner, other);
    assert_eq!(now.epoch, taken.epoch);
}

async fn a_sealed_log_finds_a_recomputed_rewrite_and_a_cut_tail(subject: &Subject) {
    let store = subject.store.as_ref();
    store.set_audit_key(AuditKey::derive(b"the conformance suite's master key"));
    let t = tenant("sealed");
    for n in 1..=4 {
        store
            .append_audit(&t, event(AuditEventKind::SettingsChanged, n))
            .await
            .unwrap();
    }
    let report = store.verify_audit(&t).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert!(report.sealed);
    assert_eq!(report.checkpoints_checked, 4);
    let anchor = report.anchor.unwrap();

    let drop_guard = if subject.is_postgres() {
        "DROP TRIGGER audit_events_no_update_delete ON audit_events"
    } else {
        "DROP TRIGGER audit_events_no_update"
    };
    subject.execute(None, drop_guard).await.unwrap();
    // Rewrite event 4 and recompute its hash as a forger with database access would.
    let events = store.list_audit(&t, &Default::default()).await.unwrap();
    let last = events.iter().find(|e| e.seq == 4).unwrap();
    let forged = serde_json::json!({"n": 40});
    let mut rewritten = last.clone();
    rewritten.data = forged.clone();
    let hash = rewritten.expected_hash(&last.prev_hash);
    let sql = format!("UPDATE audit_events SET data = '{forged}', hash = '{hash}' WHERE seq = 4");
    assert_eq!(subject.execute(Some("sealed"), &sql).await.unwrap(), 1);
    let (seq, why) = store.verify_audit(&t).await.unwrap().first_broken.unwrap();
    assert_eq!(seq, 4);
    assert!(why.contains("seal"), "{why}");

    // Cut the tail instead: the newest checkpoint names an event that is gone.
    let drop_delete = if subject.is_postgres() {
        None
    } else {
        Some("DROP TRIGGER audit_events_no_delete")
    };
    if let Some(sql) = drop_delete {
        subject.execute(None, sql).await.unwrap();
    }
    subject
        .execute(Some("sealed"), "DELETE FROM audit_events WHERE seq = 4")
        .await
        .unwrap();
    let (_, why) = store.verify_audit(&t).await.unwrap().first_broken.unwrap();
    assert!(why.contains("gone"), "{why}");
    let anchored = store
        .verify_audit_anchored(&t, Some(&anchor))
        .await
        .unwrap();
    assert!(anchored.first_broken.is_some());
}

/// A node whose clock runs ahead cannot time a review out early: the deadline is the
/// database's. A decision is taken at any time.
async fn a_review_times_out_only_past_its_deadline(subject: &Subject) {
    let store = subject.store.as_ref();
    let run = scope(store, "acme", "deadline").await;
    store.record_accept(&run, accept("deploy")).await.unwrap();
    let open = |seconds: i64| {
        let mut review = new_review(&run, "call_1");
        review.expires_at = chrono::Utc::now() + chrono::Duration::seconds(seconds);
        GateOpenedStep {
            review,
            events: vec![],
        }
    };
    let close = |id: &crate::review::ReviewId, outcome: ReviewOutcome| GateClosedStep {
        review_id: id.clone(),
        outcome,
        actor: "runtime".into(),
        event: Box::new(|_| StepEvent::new(AuditEventKind::ReviewExpired, serde_json::json!({}))),
    };
    let later = store.record_gate_opened(&run, open(3600)).await.unwrap();
    let early = store
        .record_gate_closed(&run.tenant, close(&later.id, ReviewOutcome::TimedOut))
        .await;
    assert!(matches!(early, Err(StoreError::NotExpired(_))), "{early:?}");
    let still = store
        .get_review(&run.tenant, &later.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status, ReviewStatus::Pending);
    let past = store.record_gate_opened(&run, open(-1)).await.unwrap();
    let expired = store
        .record_gate_closed(&run.tenant, close(&past.id, ReviewOutcome::TimedOut))
        .await
        .unwrap();
    assert_eq!(expired.status, ReviewStatus::Expired);
    // Waiting, and not yet resumable: one of its reviews is still pending.
    let ids = |runs: Vec<crate::store::RunRecord>| -> Vec<_> {
        runs.into_iter().map(|r| r.run_id).collect()
    };
    let waiting = store
        .awaiting_runs(&run.tenant, Some(&run.session_key))
        .await
        .unwrap();
    assert_eq!(ids(waiting), std::slice::from_ref(&run.run_id));
    assert!(
        store
            .awaiting_runs(&run.tenant, Some(&key("elsewhere")))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.resumable_runs(&run.tenant).await.unwrap().is_empty());
    // A human's answer does not wait for any deadline.
    let cancelled = store
        .record_gate_closed(&run.tenant, close(&later.id, ReviewOutcome::Cancelled))
        .await
        .unwrap();
    assert_eq!(cancelled.status, ReviewStatus::Cancelled);
    // Every review closed: the run is due to resume (in its tenant only).
    assert_eq!(
        ids(store.resumable_runs(&run.tenant).await.unwrap()),
        std::slice::from_ref(&run.run_id)
    );
    assert!(
        store
            .resumable_runs(&tenant("other"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A node that stalled past its leases' time to live still holds them on its next
/// heartbeat (nobody took them meanwhile); a lease it gave back stays given back.
async fn the_heartbeat_keeps_an_expired_lease_but_not_a_released_one(subject: &Subject) {
    let store = subject.store.as_ref();
    let node = NodeId::new("stalled").unwrap();
    let t = tenant("acme");
    let held = store
        .acquire_lease(&t, &key("kept"), &node, Duration::ZERO)
        .await
        .unwrap();
    let given = store
        .acquire_lease(&t, &key("given"), &node, Duration::from_secs(60))
        .await
        .unwrap();
    store.release_lease(&given).await.unwrap();
    assert_eq!(
        store
            .renew_leases(&node, Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
    let kept = store.get_lease(&t, &key("kept")).await.unwrap().unwrap();
    assert_eq!(kept.epoch, held.epoch);
    assert!(kept.expires_at > chrono::Utc::now());
    let released = store.get_lease(&t, &key("given")).await.unwrap().unwrap();
    assert!(released.expires_at < chrono::Utc::now());
    // A released lease is free for anyone at once.
    let other = NodeId::new("other").unwrap();
    let taken = store
        .acquire_lease(&t, &key("given"), &other, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(taken.epoch > given.epoch);
}
