//! Issued and revoked bearer tokens, by their `jti`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::auth::Role;
use crate::domain::TenantId;

use super::StoreError;

/// A token as its issuer recorded it, and whether it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub tenant: TenantId,
    pub jti: String,
    /// `None` for a revocation of a token this node did not issue.
    pub subject: Option<String>,
    pub roles: Vec<Role>,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

/// Tokens of a tenant.
#[async_trait]
pub trait TokenRepository: Send + Sync {
    /// When `jti` of `tenant` was revoked, if it was.
    async fn token_revoked(
        &self,
        tenant: &TenantId,
        jti: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The tenant's issued tokens that have not expired, revoked ones included,
    /// newest first.
    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenRecord>, StoreError>;
}
