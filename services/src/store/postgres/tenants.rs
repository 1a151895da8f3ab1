//! Tenants.

use async_trait::async_trait;

use super::{PostgresStore, done, now, parse_id};
use crate::domain::{TenantId, TenantSettings};
use crate::store::{StoreError, TenantRepository};

fn exists(tenant: &TenantId) -> StoreError {
    StoreError::Conflict(format!("tenant {tenant} already exists"))
}

#[async_trait]
impl TenantRepository for PostgresStore {
    async fn create_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        if *tenant == TenantId::default_tenant() {
            return Err(exists(tenant));
        }
        // The new tenant's own row: written in a transaction set to that tenant.
        let mut tx = self.write(tenant).await?;
        let inserted = sqlx::query(
            "INSERT INTO tenants (tenant_id, created_at) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        if inserted.rows_affected() == 0 {
            return Err(exists(tenant));
        }
        Ok(())
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        if *tenant == TenantId::default_tenant() {
            return Ok(true);
        }
        let mut tx = self.read(tenant).await?;
        let found: Option<String> =
            sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        done(tx).await?;
        Ok(found.is_some())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let mut tx = self.read_all_tenants().await?;
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT tenant_id FROM tenants ORDER BY tenant_id COLLATE \"C\"")
                .fetch_all(&mut *tx)
                .await?;
        done(tx).await?;
        let mut tenants = vec![TenantId::default_tenant()];
        for row in rows {
            tenants.push(parse_id("tenant_id", &row)?);
        }
        Ok(tenants)
    }

    async fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        let mut tx = self.read(tenant).await?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT settings FROM tenant_settings WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        done(tx).await?;
        stored.map_or_else(
            || Ok(TenantSettings::default()),
            |text| {
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("settings of tenant {tenant}: {e}")))
            },
        )
    }

    async fn put_tenant_settings(
        &self,
        tenant: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(settings)
            .map_err(|e| StoreError::Corrupt(format!("settings of tenant {tenant}: {e}")))?;
        let mut tx = self.write(tenant).await?;
        sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, \
             updated_at = excluded.updated_at",
        )
        .bind(tenant.as_str())
        .bind(text)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }
}
