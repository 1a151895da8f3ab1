//! Tenants.

use async_trait::async_trait;

use super::{SqliteStore, now, parse_id, ts};
use crate::domain::TenantId;
use crate::domain::TenantSettings;
use crate::store::{StoreError, TenantRepository};

#[async_trait]
impl TenantRepository for SqliteStore {
    async fn create_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        if *tenant == TenantId::default_tenant() {
            return Err(StoreError::Conflict(format!(
                "tenant {tenant} already exists"
            )));
        }
        let inserted = self.execute(sqlx::query(
            "INSERT INTO tenants (tenant_id, created_at) VALUES (?, ?) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(ts(&now())))
        .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "tenant {tenant} already exists"
            )));
        }
        Ok(())
    }

    async fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        if *tenant == TenantId::default_tenant() {
            return Ok(true);
        }
        let found: Option<String> =
            sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE tenant_id = ?")
                .bind(tenant.as_str())
                .fetch_optional(self.read_pool())
                .await?;
        Ok(found.is_some())
    }

    async fn list_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT tenant_id FROM tenants ORDER BY tenant_id")
                .fetch_all(self.read_pool())
                .await?;
        let mut tenants = vec![TenantId::default_tenant()];
        for row in rows {
            tenants.push(parse_id("tenant_id", &row)?);
        }
        Ok(tenants)
    }

    async fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT settings FROM tenant_settings WHERE tenant_id = ?")
                .bind(tenant.as_str())
                .fetch_optional(self.read_pool())
                .await?;
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
        self.execute(
            sqlx::query(
                "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, \
             updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(text)
            .bind(ts(&now())),
        )
        .await?;
        Ok(())
    }
}
