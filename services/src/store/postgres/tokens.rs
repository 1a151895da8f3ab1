//! Issued and revoked tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PostgresStore, done, now, parse_id};
use crate::auth::Role;
use crate::domain::TenantId;
use crate::store::{StoreError, TokenRecord, TokenRepository};

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
);

fn record(row: Row) -> Result<TokenRecord, StoreError> {
    let (tenant, jti, subject, roles, issued_at, expires_at, revoked_at, revoked_by) = row;
    let roles: Vec<Role> = match roles {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("tokens.roles: {e}")))?,
        None => Vec::new(),
    };
    Ok(TokenRecord {
        tenant: parse_id("tokens.tenant_id", &tenant)?,
        jti,
        subject,
        roles,
        issued_at,
        expires_at,
        revoked_at,
        revoked_by,
    })
}

#[async_trait]
impl TokenRepository for PostgresStore {
    async fn token_revoked(
        &self,
        tenant: &TenantId,
        jti: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let found: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT revoked_at FROM tokens WHERE tenant_id = $1 AND jti = $2")
                .bind(tenant.as_str())
                .bind(jti)
                .fetch_optional(&mut *tx)
                .await?;
        done(tx).await?;
        Ok(found.flatten())
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT tenant_id, jti, subject, roles, issued_at, expires_at, revoked_at, revoked_by \
             FROM tokens WHERE tenant_id = $1 AND subject IS NOT NULL AND expires_at > $2 \
             ORDER BY issued_at DESC",
        )
        .bind(tenant.as_str())
        .bind(now())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.into_iter().map(record).collect()
    }
}
