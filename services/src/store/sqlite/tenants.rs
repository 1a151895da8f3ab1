//! Tenants.

use async_trait::async_trait;

use super::{SqliteStore, parse_id};
use crate::domain::TenantId;
use crate::domain::TenantSettings;
use crate::store::{StoreError, TenantRepository};

#[async_trait]
impl TenantRepository for SqliteStore {
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
}
