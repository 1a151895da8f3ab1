//! Encrypted credentials.

use async_trait::async_trait;
use sqlx::Row;

use super::{PostgresStore, done};
use crate::domain::TenantId;
use crate::store::{CredentialRepository, CredentialRow, StoreError};
use crate::vault::Sealed;

fn sealed(row: &sqlx::postgres::PgRow) -> Result<Sealed, StoreError> {
    Ok(Sealed {
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}

#[async_trait]
impl CredentialRepository for PostgresStore {
    async fn get_credential(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<(Sealed, bool)>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let row = sqlx::query(
            "SELECT nonce, ciphertext, exposed FROM credentials \
             WHERE tenant_id = $1 AND key = $2",
        )
        .bind(tenant.as_str())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        done(tx).await?;
        row.map(|row| Ok((sealed(&row)?, row.try_get("exposed")?)))
            .transpose()
    }

    async fn credential_keys(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let keys = sqlx::query_scalar(
            "SELECT key FROM credentials WHERE tenant_id = $1 ORDER BY key COLLATE \"C\"",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        Ok(keys)
    }

    async fn list_credentials(&self, tenant: &TenantId) -> Result<Vec<CredentialRow>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(
            "SELECT key, nonce, ciphertext, exposed, updated_at FROM credentials \
             WHERE tenant_id = $1 ORDER BY key COLLATE \"C\"",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter()
            .map(|row| {
                Ok(CredentialRow {
                    key: row.try_get("key")?,
                    sealed: sealed(row)?,
                    exposed: row.try_get("exposed")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn any_credential(&self) -> Result<Option<Sealed>, StoreError> {
        let mut tx = self.read_all_tenants().await?;
        let row = sqlx::query("SELECT nonce, ciphertext FROM credentials LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        done(tx).await?;
        row.as_ref().map(sealed).transpose()
    }
}

#[async_trait]
impl crate::store::IntegrationRepository for PostgresStore {
    async fn integrations(
        &self,
        tenant: &TenantId,
        kind: crate::store::IntegrationKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
            "SELECT name, definition FROM integrations WHERE tenant_id = $1 AND kind = $2 \
             ORDER BY created_at, name COLLATE \"C\"",
        )
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        Ok(rows)
    }

    async fn all_integrations(
        &self,
        kind: crate::store::IntegrationKind,
    ) -> Result<Vec<(TenantId, String, serde_json::Value)>, StoreError> {
        let mut tx = self.read_all_tenants().await?;
        let rows: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
            "SELECT tenant_id, name, definition FROM integrations WHERE kind = $1 \
             ORDER BY tenant_id COLLATE \"C\", created_at, name COLLATE \"C\"",
        )
        .bind(kind.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.into_iter()
            .map(|(tenant, name, definition)| {
                Ok((super::parse_id("tenant_id", &tenant)?, name, definition))
            })
            .collect()
    }
}
