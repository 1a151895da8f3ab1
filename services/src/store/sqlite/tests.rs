//! SQLite-specific cases. What every backend must do is in `store/conformance/`.

use serde_json::json;

use super::SqliteStore;
use crate::domain::{ChatMessage, SessionKey, TenantId};
use crate::store::{AuditEventKind, AuditRepository, NewAuditEvent, SessionRepository, StoreError};

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
