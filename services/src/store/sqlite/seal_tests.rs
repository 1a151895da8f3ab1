//! Attacks on the sealed audit log by someone with write access to the database
//! file (who can drop the append-only triggers), each of which `verify_audit` must
//! name.

use serde_json::json;

use super::SqliteStore;
use crate::domain::{SessionKey, TenantId};
use crate::store::{AuditEventKind, AuditKey, AuditRepository, NewAuditEvent};

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

async fn sealed_store_with(events: usize) -> SqliteStore {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.set_audit_key(AuditKey::derive(b"a master key of thirty-two bytes"));
    for n in 0..events {
        append(&store, "s", n).await;
    }
    store
}

async fn append(store: &SqliteStore, session: &str, n: usize) {
    store
        .append_audit(
            &tenant(),
            NewAuditEvent {
                kind: AuditEventKind::SettingsChanged,
                session_key: Some(SessionKey::new(session).unwrap()),
                run_id: None,
                actor: "operator".into(),
                data: json!({ "n": n }),
            },
        )
        .await
        .unwrap();
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
        let hash = event.expected_hash(&prev);
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
async fn stripping_the_seals_or_deleting_the_checkpoints_is_found() {
    let store = sealed_store_with(5).await;
    drop_triggers(&store).await;
    // Strip every seal and delete the checkpoints that name the newest events: the
    // events themselves say the log was sealed.
    sqlx::query("UPDATE audit_events SET mac = NULL")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_checkpoints WHERE seq >= 4")
        .execute(store.pool())
        .await
        .unwrap();
    let (_, why) = broken(&store).await;
    assert!(why.contains("no seal"), "{why}");

    // Seals kept, every checkpoint deleted: each event written after a checkpoint
    // names it, and it is gone.
    let store = sealed_store_with(5).await;
    drop_triggers(&store).await;
    sqlx::query("DELETE FROM audit_checkpoints")
        .execute(store.pool())
        .await
        .unwrap();
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 2, "the first event written after checkpoint 1");
    assert!(why.contains("checkpoints were deleted"), "{why}");
}

#[tokio::test]
async fn sessions_have_chains_of_their_own_and_deleting_one_is_found() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.set_audit_key(AuditKey::derive(b"a master key of thirty-two bytes"));
    for n in 0..3 {
        append(&store, "alpha", n).await;
        append(&store, "beta", n).await;
    }
    let report = store.verify_audit(&tenant()).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert_eq!((report.events_checked, report.chains), (6, 2));
    let events = store
        .list_audit(&tenant(), &crate::store::AuditFilter::default())
        .await
        .unwrap();
    // Each event links to the previous one of its own session.
    let betas: Vec<_> = events
        .iter()
        .filter(|e| e.session_key.as_ref().unwrap().as_str() == "beta")
        .collect();
    assert_eq!(
        betas.iter().map(|e| e.chain_seq).collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(3)]
    );
    assert_eq!(betas[1].prev_hash, betas[0].hash);

    drop_triggers(&store).await;
    sqlx::query("DELETE FROM audit_events WHERE session_key = 'beta'")
        .execute(store.pool())
        .await
        .unwrap();
    let (_, why) = broken(&store).await;
    assert!(
        why.contains("session beta") && why.contains("gone"),
        "{why}"
    );
}

/// A log written before chains were per session (one chain per tenant, checkpoints
/// naming its head) still verifies after the upgrade, beside the new session chains,
/// and a change to an older event is still found.
#[tokio::test]
async fn an_older_tenant_chain_still_verifies_after_the_upgrade() {
    use crate::store::{CheckpointBody, GENESIS_HASH, chain_hash};

    let dir = tempfile::tempdir().unwrap();
    let older = dir.path().join("older");
    std::fs::create_dir(&older).unwrap();
    let all = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/sqlite");
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "0012" {
            std::fs::copy(&path, older.join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}", dir.path().join("facio.db").display());
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(older.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let key = AuditKey::derive(b"a master key of thirty-two bytes");
    let session = SessionKey::new("s").unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    let at = chrono::Utc::now();
    for seq in 1..=3_i64 {
        let data = json!({ "n": seq });
        let hash = chain_hash(
            &prev,
            seq,
            &tenant(),
            AuditEventKind::ModelCall,
            Some(&session),
            None,
            "agent",
            &data,
            &at,
        );
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, seq, kind, session_key, run_id, actor, data, \
             created_at, prev_hash, hash, mac) VALUES ('acme', ?, 'model_call', 's', NULL, \
             'agent', ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(data.to_string())
        .bind(super::ts(&at))
        .bind(&prev)
        .bind(&hash)
        .bind(key.event_mac(&hash))
        .execute(&pool)
        .await
        .unwrap();
        prev = hash;
    }
    let mac = key.checkpoint_mac(&CheckpointBody {
        tenant: &tenant(),
        seq: 1,
        head_seq: 3,
        head_hash: &prev,
        created_at: &at,
        prev_mac: GENESIS_HASH,
    });
    sqlx::query(
        "INSERT INTO audit_checkpoints (tenant_id, seq, head_seq, head_hash, created_at, \
         prev_mac, mac) VALUES ('acme', 1, 3, ?, ?, ?, ?)",
    )
    .bind(&prev)
    .bind(super::ts(&at))
    .bind(GENESIS_HASH)
    .bind(&mac)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteStore::connect(&url).await.unwrap();
    store.set_audit_key(key);
    append(&store, "s", 4).await;
    append(&store, "s", 5).await;
    let report = store.verify_audit(&tenant()).await.unwrap();
    assert_eq!(report.first_broken, None);
    assert_eq!((report.events_checked, report.chains), (5, 2));
    assert_eq!(report.checkpoints_checked, 3);
    let events = store
        .list_audit(&tenant(), &crate::store::AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.seq, e.chain_seq))
            .collect::<Vec<_>>(),
        vec![(1, None), (2, None), (3, None), (4, Some(1)), (5, Some(2))]
    );

    drop_triggers(&store).await;
    sqlx::query("UPDATE audit_events SET data = '{\"n\":20}' WHERE seq = 2")
        .execute(store.pool())
        .await
        .unwrap();
    let (seq, why) = broken(&store).await;
    assert_eq!(seq, 2);
    assert!(why.contains("changed"), "{why}");
}
