//! Encrypted credentials.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, now, ts};
use crate::domain::TenantId;
use crate::store::{CredentialRepository, StoreError};
use crate::vault::Sealed;

#[async_trait]
impl CredentialRepository for SqliteStore {
    async fn put_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<(), StoreError> {
        let at = ts(&now());
        let _writer = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO credentials (tenant_id, key, nonce, ciphertext, exposed, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, key) DO UPDATE SET \
             nonce = excluded.nonce, ciphertext = excluded.ciphertext, exposed = excluded.exposed, \
             updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(exposed)
        .bind(&at)
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_credential(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<(Sealed, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT nonce, ciphertext, exposed FROM credentials WHERE tenant_id = ? AND key = ?",
        )
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok((
                Sealed {
                    nonce: row.try_get("nonce")?,
                    ciphertext: row.try_get("ciphertext")?,
                },
                row.try_get("exposed")?,
            ))
        })
        .transpose()
    }

    async fn credential_keys(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT key FROM credentials WHERE tenant_id = ? ORDER BY key")
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
