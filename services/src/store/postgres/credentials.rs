//! Encrypted credentials.

use async_trait::async_trait;
use sqlx::Row;

use super::{PostgresStore, done, now};
use crate::domain::TenantId;
use crate::store::{CredentialRepository, CredentialRow, StoreError};
use crate::vault::Sealed;

const UPSERT: &str = "INSERT INTO credentials \
     (tenant_id, key, nonce, ciphertext, exposed, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (tenant_id, key) DO UPDATE SET \
     nonce = excluded.nonce, ciphertext = excluded.ciphertext, exposed = excluded.exposed, \
     updated_at = excluded.updated_at";

const INSERT_NEW: &str = "INSERT INTO credentials \
     (tenant_id, key, nonce, ciphertext, exposed, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (tenant_id, key) DO NOTHING";

impl PostgresStore {
    /// Runs `sql` (one of the inserts above); returns whether a row was written.
    async fn insert_credential(
        &self,
        sql: &'static str,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write(tenant).await?;
        let written = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(key)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(exposed)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(written.rows_affected() > 0)
    }

    /// One statement that changes credentials; returns whether it touched a row.
    async fn change_credential(
        &self,
        tenant: &TenantId,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write(tenant).await?;
        let changed = query.execute(&mut *tx).await?;
        self.commit(tx).await?;
        Ok(changed.rows_affected() > 0)
    }
}

fn sealed(row: &sqlx::postgres::PgRow) -> Result<Sealed, StoreError> {
    Ok(Sealed {
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
    })
}

#[async_trait]
impl CredentialRepository for PostgresStore {
    async fn put_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<(), StoreError> {
        self.insert_credential(UPSERT, tenant, key, sealed, exposed)
            .await
            .map(|_| ())
    }

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

    async fn create_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<(), StoreError> {
        if !self
            .insert_credential(INSERT_NEW, tenant, key, sealed, exposed)
            .await?
        {
            return Err(StoreError::Conflict(format!(
                "credential {key} already exists"
            )));
        }
        Ok(())
    }

    async fn delete_credential(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        let query = sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.as_str())
            .bind(key);
        self.change_credential(tenant, query).await
    }

    async fn set_credential_exposed(
        &self,
        tenant: &TenantId,
        key: &str,
        exposed: bool,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE credentials SET exposed = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND key = $4",
        )
        .bind(exposed)
        .bind(now())
        .bind(tenant.as_str())
        .bind(key);
        self.change_credential(tenant, query).await
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
