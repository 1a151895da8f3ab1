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
    async fn record_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let roles = serde_json::to_string(&token.roles)
            .map_err(|e| StoreError::Corrupt(format!("tokens.roles: {e}")))?;
        let mut tx = self.write(&token.tenant).await?;
        let inserted = sqlx::query(
            "INSERT INTO tokens (tenant_id, jti, subject, roles, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, jti) DO NOTHING",
        )
        .bind(token.tenant.as_str())
        .bind(&token.jti)
        .bind(&token.subject)
        .bind(roles)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "a token with jti {} exists",
                token.jti
            )));
        }
        Ok(())
    }

    async fn revoke_token(
        &self,
        tenant: &TenantId,
        jti: &str,
        by: &str,
    ) -> Result<Option<bool>, StoreError> {
        let mut tx = self.write(tenant).await?;
        let changed = sqlx::query(
            "UPDATE tokens SET revoked_at = $1, revoked_by = $2 \
             WHERE tenant_id = $3 AND jti = $4 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(by)
        .bind(tenant.as_str())
        .bind(jti)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        if changed.rows_affected() > 0 {
            return Ok(Some(true));
        }
        let mut tx = self.read(tenant).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT jti FROM tokens WHERE tenant_id = $1 AND jti = $2")
                .bind(tenant.as_str())
                .bind(jti)
                .fetch_optional(&mut *tx)
                .await?;
        done(tx).await?;
        Ok(exists.map(|_| false))
    }

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
