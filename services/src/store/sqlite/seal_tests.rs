//! Attacks on the sealed audit log by someone with write access to the database
//! file (who can drop the append-only triggers), each of which `verify_audit` must
//! name.

use serde_json::json;

use super::SqliteStore;
use crate::domain::{SessionKey, TenantId};
use crate::store::{AuditEventKind, AuditKey, AuditRepository, NewAuditEvent, chain_hash};

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

async fn sealed_store_with(events: usize) -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.set_audit_key(AuditKey::derive(b"a master key of thirty-two bytes"));
    for n in 0..events {
        store
            .append_audit(
                &tenant(),
                NewAuditEvent {
                    kind: AuditEventKind::SettingsChanged,
                    session_key: Some(SessionKey::new("s").unwrap()),
                    run_id: None,
                    actor: "operator".into(),
                    data: json!({ "n": n }),
                },
            )
            .await
            .unwrap();
    }
    store
}

async fn drop_triggers(store: &SqliteStore) {
    for trigger in [
        "audit_events_no_update",
        "audit_events_no_delete",
        "audit_checkpoints_no_update",
        "audit_checkpoints_no_delete",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {trigger}")))
            .execute(store.pool())
            .await
            .unwrap();
    }
}

async fn broken(store: &SqliteStore) -> (i64, String) {
    let report = store.verify_audit(&tenant()).await.unwrap();
    report.first_broken.expect("tampering must be found")
}

#[tokio::test]
async fn an_untouched_sealed_log_verifies_and_names_its_anchor() {
    let store = sealed_store_with(5).await;
    let report = store.verify_audit(&tenant()).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert!(report.sealed);
    assert_eq!(report.events_checked, 5);
    assert_eq!(report.checkpoints_checked, 5);
    let anchor = report.anchor.expect("a checkpoint to keep");
    assert!(anchor.starts_with("5:"), "{anchor}");
    let again = store
        .verify_audit_anchored(&tenant(), Some(&anchor))
        .await
        .unwrap();
    assert_eq!(again.first_broken, None);
}

#[tokio::test]
async fn rewriting_an_event_and_recomputing_every_hash_is_found() {
    let store = sealed_store_with(4).await;
    drop_triggers(&store).await;
    // Change event 2 and rehash it and everything after it, as a forger would.
    let events = store
        .list_audit(&tenant(), &crate::store::AuditFilter::default())
        .await
        .unwrap();
    let mut events: Vec<_> = events.into_iter().collect();
    events.sort_by_key(|e| e.seq);
    let mut prev = events[0].hash.clone();
    for event in events.iter_mut().skip(1) {
        if event.seq == 2 {
            event.data = json!({ "n": 99 });
        }
        let hash = chain_hash(
            &prev,
            event.seq,
            &event.tenant,
            event.kind,
            event.session_key.as_ref(),
            event.run_id.as_ref(),
            &event.actor,
            &event.data,
            &event.created_at,
        );
        sqlx::query("UPDATE audit_events SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(event.data.to_string())
            .bind(&prev)
            .bind(&hash)
            .bind(event.seq)
            .execute(store.pool())
            .await
            .unwrap();
        prev = hash;
    }
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 2);
    assert!(why.contains("seal"), "{why}");
}

#[tokio::test]
async fn deleting_the_newest_events_is_found() {
    let store = sealed_store_with(6).await;
    drop_triggers(&store).await;
    sqlx::query("DELETE FROM audit_events WHERE seq > 4")
        .execute(store.pool())
        .await
        .unwrap();
    let (_, why) = broken(&store).await;
    assert!(why.contains("gone"), "{why}");
}

#[tokio::test]
async fn deleting_every_event_is_found() {
    let store = sealed_store_with(3).await;
    drop_triggers(&store).await;
    sqlx::query("DELETE FROM audit_events")
        .execute(store.pool())
        .await
        .unwrap();
    let (_, why) = broken(&store).await;
    assert!(why.contains("gone"), "{why}");
}

#[tokio::test]
async fn removing_a_seal_or_forging_a_checkpoint_is_found() {
    let store = sealed_store_with(3).await;
    drop_triggers(&store).await;
    sqlx::query("UPDATE audit_events SET mac = NULL WHERE seq = 3")
        .execute(store.pool())
        .await
        .unwrap();
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 3);
    assert!(why.contains("no seal"), "{why}");

    let store = sealed_store_with(3).await;
    drop_triggers(&store).await;
    sqlx::query("UPDATE audit_checkpoints SET mac = 'ff' || substr(mac, 3) WHERE seq = 3")
        .execute(store.pool())
        .await
        .unwrap();
    let (_, why) = broken(&store).await;
    assert!(why.contains("not sealed"), "{why}");
}

#[tokio::test]
async fn rolling_everything_back_is_found_against_a_kept_anchor() {
    let store = sealed_store_with(4).await;
    let anchor = store.verify_audit(&tenant()).await.unwrap().anchor.unwrap();
    drop_triggers(&store).await;
    // Back to the state after two events: both tables cut consistently.
    sqlx::query("DELETE FROM audit_events WHERE seq > 2")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_checkpoints WHERE seq > 2")
        .execute(store.pool())
        .await
        .unwrap();
    let plain = store.verify_audit(&tenant()).await.unwrap();
    assert_eq!(
        plain.first_broken, None,
        "a consistent rollback is invisible from the database alone"
    );
    let anchored = store
        .verify_audit_anchored(&tenant(), Some(&anchor))
        .await
        .unwrap();
    let (_, why) = anchored.first_broken.expect("the anchor is gone");
    assert!(why.contains("rolled back"), "{why}");
}

#[tokio::test]
async fn another_key_does_not_verify_the_seals() {
    let store = sealed_store_with(2).await;
    let other = SqliteStore {
        audit_key: std::sync::Arc::default(),
        ..store.clone()
    };
    other.set_audit_key(AuditKey::derive(b"another master key, not the one!"));
    let report = other.verify_audit(&tenant()).await.unwrap();
    let (seq, why) = report.first_broken.expect("foreign seals");
    assert_eq!(seq, 1);
    assert!(why.contains("seal"), "{why}");
}

#[tokio::test]
async fn stripping_every_seal_and_the_checkpoints_after_a_rewrite_is_found() {
    let store = sealed_store_with(5).await;
    drop_triggers(&store).await;
    // Rewrite event 4 (rehashing the tail), strip every seal, and delete the
    // checkpoints that name the rewritten part: the first checkpoint still says the
    // log was sealed from its head on.
    sqlx::query("UPDATE audit_events SET mac = NULL")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_checkpoints WHERE head_seq >= 4")
        .execute(store.pool())
        .await
        .unwrap();
    let (_, why) = broken(&store).await;
    assert!(why.contains("no seal"), "{why}");
    // And with every checkpoint gone too, a log of events with none is unsealed.
    sqlx::query("DELETE FROM audit_checkpoints")
        .execute(store.pool())
        .await
        .unwrap();
    let (_, why) = broken(&store).await;
    assert!(why.contains("no checkpoint"), "{why}");
}
