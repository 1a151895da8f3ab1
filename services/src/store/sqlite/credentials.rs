//! Encrypted credentials.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, now, parse_ts, ts};
use crate::domain::TenantId;
use crate::store::{CredentialRepository, CredentialRow, StoreError};
use crate::vault::Sealed;

/// What an insert does when the key exists.
enum Conflict {
    Replace,
    Keep,
}

impl SqliteStore {
    /// Inserts a credential; returns whether a row was written.
    async fn insert_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
        conflict: Conflict,
    ) -> Result<bool, StoreError> {
        let at = ts(&now());
        let sql = match conflict {
            Conflict::Replace => {
                "INSERT INTO credentials (tenant_id, key, nonce, ciphertext, exposed, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, key) DO UPDATE SET \
                 nonce = excluded.nonce, ciphertext = excluded.ciphertext, exposed = excluded.exposed, \
                 updated_at = excluded.updated_at"
            }
            Conflict::Keep => {
                "INSERT INTO credentials (tenant_id, key, nonce, ciphertext, exposed, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, key) DO NOTHING"
            }
        };
        let written = self
            .execute(
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(key)
                    .bind(&sealed.nonce)
                    .bind(&sealed.ciphertext)
                    .bind(exposed)
                    .bind(&at)
                    .bind(&at),
            )
            .await?;
        Ok(written > 0)
    }
}

#[async_trait]
impl CredentialRepository for SqliteStore {
    async fn put_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<(), StoreError> {
        self.insert_credential(tenant, key, sealed, exposed, Conflict::Replace)
            .await
            .map(|_| ())
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
        .fetch_optional(self.read_pool())
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
                .fetch_all(self.read_pool())
                .await?,
        )
    }

    async fn list_credentials(&self, tenant: &TenantId) -> Result<Vec<CredentialRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, nonce, ciphertext, exposed, updated_at FROM credentials \
             WHERE tenant_id = ? ORDER BY key",
        )
        .bind(tenant.as_str())
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CredentialRow {
                    key: row.try_get("key")?,
                    sealed: Sealed {
                        nonce: row.try_get("nonce")?,
                        ciphertext: row.try_get("ciphertext")?,
                    },
                    exposed: row.try_get("exposed")?,
                    updated_at: parse_ts("updated_at", row.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn create_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<(), StoreError> {
        let inserted = self
            .insert_credential(tenant, key, sealed, exposed, Conflict::Keep)
            .await?;
        if !inserted {
            return Err(StoreError::Conflict(format!(
                "credential {key} already exists"
            )));
        }
        Ok(())
    }

    async fn delete_credential(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        let deleted = self
            .execute(
                sqlx::query("DELETE FROM credentials WHERE tenant_id = ? AND key = ?")
                    .bind(tenant.as_str())
                    .bind(key),
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn set_credential_exposed(
        &self,
        tenant: &TenantId,
        key: &str,
        exposed: bool,
    ) -> Result<bool, StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "UPDATE credentials SET exposed = ?, updated_at = ? \
                     WHERE tenant_id = ? AND key = ?",
                )
                .bind(exposed)
                .bind(ts(&now()))
                .bind(tenant.as_str())
                .bind(key),
            )
            .await?;
        Ok(updated > 0)
    }

    async fn any_credential(&self) -> Result<Option<Sealed>, StoreError> {
        let row = sqlx::query("SELECT nonce, ciphertext FROM credentials LIMIT 1")
            .fetch_optional(self.read_pool())
            .await?;
        row.map(|row| {
            Ok(Sealed {
                nonce: row.try_get("nonce")?,
                ciphertext: row.try_get("ciphertext")?,
            })
        })
        .transpose()
    }
}
