//! Operator changes and the audit events that record them, written in one
//! transaction: a change whose event cannot be written is not made, and an event is
//! never written for a change that did not happen.

use async_trait::async_trait;

use crate::domain::{TenantId, TenantSettings};
use crate::vault::Sealed;

use super::{NewAuditEvent, StoreError, TokenRecord};

/// A write to what the store holds for a tenant, made by an operator.
#[derive(Debug, Clone)]
pub enum Change {
    /// Nothing the store holds changes (the change is to files or to the node's
    /// settings): only the events are written.
    Record,
    /// The tenant's policy document, replaced whole.
    Policy(serde_json::Value),
    /// The tenant itself; [`StoreError::Conflict`] if it exists.
    CreateTenant,
    /// The tenant's settings, replaced whole.
    TenantSettings(TenantSettings),
    /// A token just issued; [`StoreError::Conflict`] if its jti is taken.
    IssueToken(TokenRecord),
    /// Token `jti` revoked by `by`.
    RevokeToken {
        jti: String,
        by: String,
    },
    /// A credential stored: replacing one of the same key, or (`replace: false`) only
    /// when the key is new ([`StoreError::Conflict`] otherwise).
    PutCredential {
        key: String,
        sealed: Sealed,
        exposed: bool,
        replace: bool,
    },
    DeleteCredential {
        key: String,
    },
    ExposeCredential {
        key: String,
        exposed: bool,
    },
    /// Adds the tenant's integration `name` of `kind` (`replace`: or replaces it;
    /// without it one of that name is a conflict). `definition` is its JSON (for an
    /// MCP server a [`crate::config::McpServerConfig`]).
    PutIntegration {
        kind: crate::store::IntegrationKind,
        name: String,
        definition: serde_json::Value,
        replace: bool,
    },
    /// Removes the tenant's integration `name` of `kind` (missing when there is none).
    DeleteIntegration {
        kind: crate::store::IntegrationKind,
        name: String,
    },
}

/// What a change did. Its events are written only for [`Applied::Changed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// It was so already (a token revoked before).
    Unchanged,
    /// What it names does not exist.
    Missing,
}

/// An audit event and the tenant whose log it goes to.
pub type Recorded = (TenantId, NewAuditEvent);

/// Operator changes, each with its audit events in the same transaction.
#[async_trait]
pub trait ChangeRepository: Send + Sync {
    /// Makes `change` in `tenant` and appends `events` in the same transaction, or
    /// neither: when an event cannot be written, nothing changes. Events are written
    /// only when the change changed something.
    async fn apply_change(
        &self,
        tenant: &TenantId,
        change: Change,
        events: Vec<Recorded>,
    ) -> Result<Applied, StoreError>;

    /// Replaces the tenant's policy document (unrecorded: for loading and tests).
    async fn put_policy(
        &self,
        tenant: &TenantId,
        document: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.apply_change(tenant, Change::Policy(document.clone()), Vec::new())
            .await
            .map(|_| ())
    }

    /// Creates a tenant; [`StoreError::Conflict`] if it exists.
    async fn create_tenant(&self, tenant: &TenantId) -> Result<(), StoreError> {
        self.apply_change(tenant, Change::CreateTenant, Vec::new())
            .await
            .map(|_| ())
    }

    async fn put_tenant_settings(
        &self,
        tenant: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let change = Change::TenantSettings(settings.clone());
        self.apply_change(tenant, change, Vec::new())
            .await
            .map(|_| ())
    }

    /// Records a token just issued.
    async fn record_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let change = Change::IssueToken(token.clone());
        self.apply_change(&token.tenant, change, Vec::new())
            .await
            .map(|_| ())
    }

    /// Revokes token `jti` of `tenant`: `Some(true)` when revoked now, `Some(false)`
    /// when it already was, `None` when the tenant issued no such token.
    async fn revoke_token(
        &self,
        tenant: &TenantId,
        jti: &str,
        by: &str,
    ) -> Result<Option<bool>, StoreError> {
        let change = Change::RevokeToken {
            jti: jti.to_owned(),
            by: by.to_owned(),
        };
        Ok(match self.apply_change(tenant, change, Vec::new()).await? {
            Applied::Changed => Some(true),
            Applied::Unchanged => Some(false),
            Applied::Missing => None,
        })
    }

    /// Creates or replaces a credential.
    async fn put_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<(), StoreError> {
        self.apply_change(tenant, credential(key, sealed, exposed, true), Vec::new())
            .await
            .map(|_| ())
    }

    /// Stores a new credential; [`StoreError::Conflict`] if the key exists.
    async fn create_credential(
        &self,
        tenant: &TenantId,
        key: &str,
        sealed: &Sealed,
        exposed: bool,
    ) -> Result<(), StoreError> {
        self.apply_change(tenant, credential(key, sealed, exposed, false), Vec::new())
            .await
            .map(|_| ())
    }

    /// Whether it existed.
    async fn delete_credential(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        let change = Change::DeleteCredential {
            key: key.to_owned(),
        };
        Ok(self.apply_change(tenant, change, Vec::new()).await? == Applied::Changed)
    }

    /// Whether it existed.
    async fn set_credential_exposed(
        &self,
        tenant: &TenantId,
        key: &str,
        exposed: bool,
    ) -> Result<bool, StoreError> {
        let change = Change::ExposeCredential {
            key: key.to_owned(),
            exposed,
        };
        Ok(self.apply_change(tenant, change, Vec::new()).await? == Applied::Changed)
    }
}

fn credential(key: &str, sealed: &Sealed, exposed: bool, replace: bool) -> Change {
    Change::PutCredential {
        key: key.to_owned(),
        sealed: sealed.clone(),
        exposed,
        replace,
    }
}

/// Refuses creating the default tenant, which exists without a row.
pub(super) fn check_new_tenant(tenant: &TenantId) -> Result<(), StoreError> {
    if *tenant == TenantId::default_tenant() {
        return Err(tenant_exists(tenant));
    }
    Ok(())
}

pub(super) fn tenant_exists(tenant: &TenantId) -> StoreError {
    StoreError::Conflict(format!("tenant {tenant} already exists"))
}

pub(super) fn token_exists(jti: &str) -> StoreError {
    StoreError::Conflict(format!("a token with jti {jti} exists"))
}

pub(super) fn integration_exists(kind: crate::store::IntegrationKind, name: &str) -> StoreError {
    StoreError::Conflict(format!("{} named {name} already exists", kind.described()))
}

pub(super) fn credential_exists(key: &str) -> StoreError {
    StoreError::Conflict(format!("credential {key} already exists"))
}

/// The settings as stored (JSON text).
pub(super) fn settings_text(
    tenant: &TenantId,
    settings: &TenantSettings,
) -> Result<String, StoreError> {
    serde_json::to_string(settings)
        .map_err(|e| StoreError::Corrupt(format!("settings of tenant {tenant}: {e}")))
}

/// Token roles as stored (JSON text).
pub(super) fn roles_text(token: &TokenRecord) -> Result<String, StoreError> {
    serde_json::to_string(&token.roles)
        .map_err(|e| StoreError::Corrupt(format!("tokens.roles: {e}")))
}
