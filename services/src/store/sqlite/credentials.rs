//! Encrypted credentials.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, parse_ts};
use crate::domain::TenantId;
use crate::store::{CredentialRepository, CredentialRow, StoreError};
use crate::vault::Sealed;

#[async_trait]
impl CredentialRepository for SqliteStore {
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

#[async_trait]
impl crate::store::IntegrationRepository for SqliteStore {
    async fn integrations(
        &self,
        tenant: &TenantId,
        kind: crate::store::IntegrationKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, definition FROM integrations WHERE tenant_id = ? AND kind = ? \
             ORDER BY created_at, name",
        )
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .fetch_all(self.read_pool())
        .await?;
        rows.into_iter()
            .map(|(name, definition)| {
                let definition = serde_json::from_str(&definition).map_err(|e| {
                    StoreError::Corrupt(format!("{} {name}'s definition: {e}", kind.as_str()))
                })?;
                Ok((name, definition))
            })
            .collect()
    }

    async fn all_integrations(
        &self,
        kind: crate::store::IntegrationKind,
    ) -> Result<Vec<(TenantId, String, serde_json::Value)>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT tenant_id, name, definition FROM integrations WHERE kind = ? \
             ORDER BY tenant_id, created_at, name",
        )
        .bind(kind.as_str())
        .fetch_all(self.read_pool())
        .await?;
        rows.into_iter()
            .map(|(tenant, name, definition)| {
                let definition = serde_json::from_str(&definition).map_err(|e| {
                    StoreError::Corrupt(format!("{} {name}'s definition: {e}", kind.as_str()))
                })?;
                Ok((super::parse_id("tenant_id", &tenant)?, name, definition))
            })
            .collect()
    }
}
