//! Issued and revoked tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{SqliteStore, now, parse_id, parse_ts, ts};
use crate::auth::Role;
use crate::domain::TenantId;
use crate::store::{StoreError, TokenRecord, TokenRepository};

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn optional_ts(column: &str, text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|t| parse_ts(column, &t)).transpose()
}

fn record(row: Row) -> Result<TokenRecord, StoreError> {
    let (tenant, jti, subject, roles, issued, expires, revoked, by) = row;
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
        issued_at: optional_ts("tokens.issued_at", issued)?,
        expires_at: optional_ts("tokens.expires_at", expires)?,
        revoked_at: optional_ts("tokens.revoked_at", revoked)?,
        revoked_by: by,
    })
}

#[async_trait]
impl TokenRepository for SqliteStore {
    async fn token_revoked(
        &self,
        tenant: &TenantId,
        jti: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT revoked_at FROM tokens WHERE tenant_id = ? AND jti = ?")
                .bind(tenant.as_str())
                .bind(jti)
                .fetch_optional(self.read_pool())
                .await?;
        optional_ts("tokens.revoked_at", found.flatten())
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT tenant_id, jti, subject, roles, issued_at, expires_at, revoked_at, revoked_by \
             FROM tokens WHERE tenant_id = ? AND subject IS NOT NULL AND expires_at > ? \
             ORDER BY issued_at DESC",
        )
        .bind(tenant.as_str())
        .bind(ts(&now()))
        .fetch_all(self.read_pool())
        .await?;
        rows.into_iter().map(record).collect()
    }
}
