//! Sessions and message history.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{PostgresStore, done, now, parse_id};
use crate::domain::{ChatMessage, RunId, SessionKey, TenantId};
use crate::store::{NewAuditEvent, SessionRecord, SessionRepository, StoreError, StoredMessage};

fn session_row(row: &PgRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        tenant: parse_id("tenant_id", row.try_get("tenant_id")?)?,
        key: parse_id("session_key", row.try_get("session_key")?)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        message_count: row.try_get("message_count")?,
    })
}

/// Inserts the session if missing, inside the caller's transaction.
pub(super) async fn ensure_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    key: &SessionKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (tenant_id, session_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $3) ON CONFLICT (tenant_id, session_key) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(key.as_str())
    .bind(now())
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends messages after the session's last one, inside the caller's transaction
/// (which also ensures the session exists). Updating the session's row first locks
/// it until the transaction ends, so concurrent appends to one session take their
/// sequence numbers one after another.
pub(super) async fn append_messages_in(
    conn: &mut sqlx::PgConnection,
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
    let at = now();
    sqlx::query(
        "UPDATE sessions SET updated_at = $1, message_count = message_count + $2 \
         WHERE tenant_id = $3 AND session_key = $4",
    )
    .bind(at)
    .bind(i64::try_from(encoded.len()).unwrap_or(i64::MAX))
    .bind(tenant.as_str())
    .bind(key.as_str())
    .execute(&mut *conn)
    .await?;
    let last: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE tenant_id = $1 AND session_key = $2",
    )
    .bind(tenant.as_str())
    .bind(key.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let mut seqs = Vec::with_capacity(encoded.len());
    for (seq, message) in (last + 1..).zip(&encoded) {
        sqlx::query(
            "INSERT INTO messages (tenant_id, session_key, seq, run_id, message, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(seq)
        .bind(run.map(RunId::as_str))
        .bind(message)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        seqs.push(seq);
    }
    Ok(seqs)
}

#[async_trait]
impl SessionRepository for PostgresStore {
    async fn ensure_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<SessionRecord, StoreError> {
        let mut tx = self.write(tenant).await?;
        ensure_in(&mut tx, tenant, key).await?;
        self.commit(tx).await?;
        self.get_session(tenant, key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session {key}")))
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let row = sqlx::query(
            "SELECT tenant_id, session_key, created_at, updated_at, message_count \
             FROM sessions WHERE tenant_id = $1 AND session_key = $2",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        done(tx).await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(
            "SELECT tenant_id, session_key, created_at, updated_at, message_count \
             FROM sessions WHERE tenant_id = $1 \
             ORDER BY updated_at DESC, session_key COLLATE \"C\" LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter().map(session_row).collect()
    }

    async fn append_messages(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        run: Option<&RunId>,
        messages: &[ChatMessage],
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.write(tenant).await?;
        let seqs = append_messages_in(&mut tx, tenant, key, run, messages).await?;
        self.commit(tx).await?;
        Ok(seqs)
    }

    async fn history(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(
            "SELECT seq, run_id, message, created_at FROM messages \
             WHERE tenant_id = $1 AND session_key = $2 ORDER BY seq",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let text: &str = row.try_get("message")?;
                let message = serde_json::from_str(text).map_err(|e| {
                    StoreError::Corrupt(format!("message {seq} of session {key}: {e}"))
                })?;
                let run: Option<&str> = row.try_get("run_id")?;
                Ok(StoredMessage {
                    seq,
                    run_id: run.map(|r| parse_id("run_id", r)).transpose()?,
                    message,
                    created_at: row.try_get("created_at")?,
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
        let mut tx = self.write(tenant).await?;
        // Locking the session's row first queues a turn being accepted or appended
        // to it behind the deletion, so none slips in between the check and the
        // deletes.
        sqlx::query("SELECT 1 FROM sessions WHERE tenant_id = $1 AND session_key = $2 FOR UPDATE")
            .bind(tenant.as_str())
            .bind(key.as_str())
            .execute(&mut *tx)
            .await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND session_key = $2 \
             AND status IN ('queued', 'running', 'awaiting_review')",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if active > 0 {
            return Err(StoreError::Conflict(format!(
                "session {key} has a run in progress or awaiting a review; stop it first"
            )));
        }
        // Children first: the foreign keys point from them to runs and sessions.
        for sql in [
            "DELETE FROM reviews WHERE tenant_id = $1 AND run_id IN \
             (SELECT run_id FROM runs WHERE tenant_id = $1 AND session_key = $2)",
            "DELETE FROM tool_calls WHERE tenant_id = $1 AND run_id IN \
             (SELECT run_id FROM runs WHERE tenant_id = $1 AND session_key = $2)",
            "DELETE FROM messages WHERE tenant_id = $1 AND session_key = $2",
            "DELETE FROM runs WHERE tenant_id = $1 AND session_key = $2",
        ] {
            sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(key.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND session_key = $2")
            .bind(tenant.as_str())
            .bind(key.as_str())
            .execute(&mut *tx)
            .await?;
        let existed = deleted.rows_affected() > 0;
        if let (true, Some(event)) = (existed, record) {
            let audit_key = self.audit_key();
            super::audit::append_audit_in(&mut tx, tenant, event, None, audit_key.as_ref()).await?;
            super::audit::checkpoint_in(&mut tx, tenant, audit_key.as_ref()).await?;
        }
        self.commit(tx).await?;
        Ok(existed)
    }
}
