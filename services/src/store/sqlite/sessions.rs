//! Sessions and message history.

use async_trait::async_trait;
// Dynamic SQL here only splices constant column lists and fixed clauses; every
// value is bound.
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, now, parse_id, parse_ts, ts};
use crate::domain::{ChatMessage, RunId, SessionKey, TenantId};
use crate::store::{NewAuditEvent, SessionRecord, SessionRepository, StoreError, StoredMessage};

const SESSION_COLUMNS: &str = "tenant_id, session_key, created_at, updated_at, message_count";

fn session_row(row: &sqlx::sqlite::SqliteRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        tenant: parse_id("tenant_id", row.try_get("tenant_id")?)?,
        key: parse_id("session_key", row.try_get("session_key")?)?,
        created_at: parse_ts("created_at", row.try_get("created_at")?)?,
        updated_at: parse_ts("updated_at", row.try_get("updated_at")?)?,
        message_count: row.try_get("message_count")?,
    })
}

/// Inserts the session if missing, inside the caller's transaction.
pub(super) async fn ensure_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    key: &SessionKey,
) -> Result<(), StoreError> {
    let at = ts(&now());
    sqlx::query(
        "INSERT INTO sessions (tenant_id, session_key, created_at, updated_at) \
         VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, session_key) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(key.as_str())
    .bind(&at)
    .bind(&at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends messages after the session's last one, inside the caller's write
/// transaction (which also ensures the session exists).
pub(super) async fn append_messages_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    key: &SessionKey,
    run: Option<&RunId>,
    messages: &[ChatMessage],
) -> Result<Vec<i64>, StoreError> {
    let encoded = messages
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a message: {e}")))?;
    ensure_in(&mut *conn, tenant, key).await?;
    let last: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE tenant_id = ? AND session_key = ?",
    )
    .bind(tenant.as_str())
    .bind(key.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let at = ts(&now());
    let mut seqs = Vec::with_capacity(encoded.len());
    for (offset, message) in encoded.iter().enumerate() {
        let seq = last + 1 + i64::try_from(offset).unwrap_or(i64::MAX - last - 1);
        sqlx::query(
            "INSERT INTO messages (tenant_id, session_key, seq, run_id, message, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(seq)
        .bind(run.map(RunId::as_str))
        .bind(message)
        .bind(&at)
        .execute(&mut *conn)
        .await?;
        seqs.push(seq);
    }
    sqlx::query(
        "UPDATE sessions SET updated_at = ?, message_count = message_count + ? \
         WHERE tenant_id = ? AND session_key = ?",
    )
    .bind(&at)
    .bind(i64::try_from(encoded.len()).unwrap_or(i64::MAX))
    .bind(tenant.as_str())
    .bind(key.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(seqs)
}

#[async_trait]
impl SessionRepository for SqliteStore {
    async fn ensure_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<SessionRecord, StoreError> {
        let (t, k) = (tenant.clone(), key.clone());
        self.write(move |conn| Box::pin(async move { ensure_in(conn, &t, &k).await }))
            .await?;
        self.get_session(tenant, key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session {key}")))
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ? AND session_key = ?"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(key.as_str())
            .fetch_optional(self.read_pool())
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ? \
             ORDER BY updated_at DESC, session_key LIMIT ?"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(i64::from(limit))
            .fetch_all(self.read_pool())
            .await?;
        rows.iter().map(session_row).collect()
    }

    async fn append_messages(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        run: Option<&RunId>,
        messages: &[ChatMessage],
    ) -> Result<Vec<i64>, StoreError> {
        let (t, k, r, m) = (tenant.clone(), key.clone(), run.cloned(), messages.to_vec());
        self.write(move |conn| {
            Box::pin(async move { append_messages_in(conn, &t, &k, r.as_ref(), &m).await })
        })
        .await
    }

    async fn history(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, run_id, message, created_at FROM messages \
             WHERE tenant_id = ? AND session_key = ? ORDER BY seq",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let text: String = row.try_get("message")?;
                let message = serde_json::from_str(&text).map_err(|e| {
                    StoreError::Corrupt(format!("message {seq} of session {key}: {e}"))
                })?;
                let run: Option<String> = row.try_get("run_id")?;
                Ok(StoredMessage {
                    seq,
                    run_id: run.map(|r| parse_id("run_id", &r)).transpose()?,
                    message,
                    created_at: parse_ts("created_at", row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    async fn delete_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        record: Option<NewAuditEvent>,
    ) -> Result<bool, StoreError> {
        let (t, k, audit_key) = (tenant.clone(), key.clone(), self.audit_key());
        self.write(move |conn| {
            Box::pin(async move {
                let active: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM runs WHERE tenant_id = ? AND session_key = ? \
                     AND status IN ('queued', 'running', 'awaiting_review')",
                )
                .bind(t.as_str())
                .bind(k.as_str())
                .fetch_one(&mut *conn)
                .await?;
                if active > 0 {
                    return Err(StoreError::Conflict(format!(
                        "session {k} has a run in progress or awaiting a review; stop it first"
                    )));
                }
                // Children first: the foreign keys point from them to runs and sessions.
                for sql in [
                    "DELETE FROM reviews WHERE tenant_id = ?1 AND run_id IN \
                     (SELECT run_id FROM runs WHERE tenant_id = ?1 AND session_key = ?2)",
                    "DELETE FROM tool_calls WHERE tenant_id = ?1 AND run_id IN \
                     (SELECT run_id FROM runs WHERE tenant_id = ?1 AND session_key = ?2)",
                    "DELETE FROM messages WHERE tenant_id = ? AND session_key = ?",
                    "DELETE FROM runs WHERE tenant_id = ? AND session_key = ?",
                ] {
                    sqlx::query(sql)
                        .bind(t.as_str())
                        .bind(k.as_str())
                        .execute(&mut *conn)
                        .await?;
                }
                let deleted =
                    sqlx::query("DELETE FROM sessions WHERE tenant_id = ? AND session_key = ?")
                        .bind(t.as_str())
                        .bind(k.as_str())
                        .execute(&mut *conn)
                        .await?;
                let existed = deleted.rows_affected() > 0;
                if let (true, Some(event)) = (existed, record) {
                    let key = audit_key.as_ref();
                    super::audit::append_audit_in(&mut *conn, &t, event, None, key).await?;
                    super::audit::checkpoint_in(&mut *conn, &t, key).await?;
                }
                Ok(existed)
            })
        })
        .await
    }
}
