//! Operator changes with their audit events: one unit of the writer (one savepoint of
//! its transaction), so the change and its events commit together or not at all.

use async_trait::async_trait;

use super::audit::{append_audit_in, checkpoint_in};
use super::{SqliteStore, now, ts};
use crate::domain::TenantId;
use crate::store::StoreError;
use crate::store::change::{
    Applied, Change, ChangeRepository, Recorded, check_new_tenant, credential_exists,
    integration_exists, roles_text, settings_text, tenant_exists, token_exists,
};

/// Rows touched, as [`Applied`]: none is `missing`.
fn touched(rows: u64, missing: Applied) -> Applied {
    if rows > 0 { Applied::Changed } else { missing }
}

/// Makes `change` on the writer's connection.
async fn change_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    change: Change,
) -> Result<Applied, StoreError> {
    let at = ts(&now());
    Ok(match change {
        Change::Record => Applied::Changed,
        Change::Policy(document) => {
            sqlx::query(
                "INSERT INTO policies (tenant_id, document, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (tenant_id) DO UPDATE SET document = excluded.document, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(document.to_string())
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Applied::Changed
        }
        Change::CreateTenant => {
            check_new_tenant(tenant)?;
            let inserted = sqlx::query(
                "INSERT INTO tenants (tenant_id, created_at) VALUES (?, ?) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(tenant_exists(tenant));
            }
            Applied::Changed
        }
        Change::TenantSettings(settings) => {
            sqlx::query(
                "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(settings_text(tenant, &settings)?)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Applied::Changed
        }
        Change::IssueToken(token) => {
            let inserted = sqlx::query(
                "INSERT INTO tokens (tenant_id, jti, subject, roles, issued_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, jti) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(&token.jti)
            .bind(&token.subject)
            .bind(roles_text(&token)?)
            .bind(token.issued_at.as_ref().map(ts))
            .bind(token.expires_at.as_ref().map(ts))
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(token_exists(&token.jti));
            }
            Applied::Changed
        }
        Change::RevokeToken { jti, by } => {
            let revoked = sqlx::query(
                "UPDATE tokens SET revoked_at = ?, revoked_by = ? \
                 WHERE tenant_id = ? AND jti = ? AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(by)
            .bind(tenant.as_str())
            .bind(&jti)
            .execute(&mut *conn)
            .await?;
            if revoked.rows_affected() > 0 {
                return Ok(Applied::Changed);
            }
            let exists: Option<String> =
                sqlx::query_scalar("SELECT jti FROM tokens WHERE tenant_id = ? AND jti = ?")
                    .bind(tenant.as_str())
                    .bind(&jti)
                    .fetch_optional(&mut *conn)
                    .await?;
            if exists.is_some() {
                Applied::Unchanged
            } else {
                Applied::Missing
            }
        }
        Change::PutCredential {
            key,
            sealed,
            exposed,
            replace,
        } => {
            let on_conflict = if replace {
                "DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
                 exposed = excluded.exposed, updated_at = excluded.updated_at"
            } else {
                "DO NOTHING"
            };
            let written = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO credentials \
                 (tenant_id, key, nonce, ciphertext, exposed, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (tenant_id, key) {on_conflict}"
            )))
            .bind(tenant.as_str())
            .bind(&key)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(exposed)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if written.rows_affected() == 0 {
                return Err(credential_exists(&key));
            }
            Applied::Changed
        }
        Change::PutIntegration {
            kind,
            name,
            definition,
            replace,
        } => {
            let on_conflict = if replace {
                "DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at"
            } else {
                "DO NOTHING"
            };
            let written = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO integrations \
                 (tenant_id, kind, name, definition, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
                 ON CONFLICT (tenant_id, kind, name) {on_conflict}"
            )))
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(&name)
            .bind(definition.to_string())
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if written.rows_affected() == 0 {
                return Err(integration_exists(kind, &name));
            }
            Applied::Changed
        }
        Change::DeleteIntegration { kind, name } => {
            let deleted = sqlx::query(
                "DELETE FROM integrations WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3",
            )
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(name)
            .execute(&mut *conn)
            .await?;
            touched(deleted.rows_affected(), Applied::Missing)
        }
        Change::DeleteCredential { key } => {
            let deleted = sqlx::query("DELETE FROM credentials WHERE tenant_id = ? AND key = ?")
                .bind(tenant.as_str())
                .bind(key)
                .execute(&mut *conn)
                .await?;
            touched(deleted.rows_affected(), Applied::Missing)
        }
        Change::ExposeCredential { key, exposed } => {
            let updated = sqlx::query(
                "UPDATE credentials SET exposed = ?, updated_at = ? \
                 WHERE tenant_id = ? AND key = ?",
            )
            .bind(exposed)
            .bind(at)
            .bind(tenant.as_str())
            .bind(key)
            .execute(&mut *conn)
            .await?;
            touched(updated.rows_affected(), Applied::Missing)
        }
    })
}

#[async_trait]
impl ChangeRepository for SqliteStore {
    async fn apply_change(
        &self,
        tenant: &TenantId,
        change: Change,
        events: Vec<Recorded>,
    ) -> Result<Applied, StoreError> {
        let (tenant, key) = (tenant.clone(), self.audit_key());
        self.write(move |conn| {
            Box::pin(async move {
                let applied = change_in(&mut *conn, &tenant, change).await?;
                if applied != Applied::Changed {
                    return Ok(applied);
                }
                for (log, event) in events {
                    append_audit_in(&mut *conn, &log, event, None, key.as_ref()).await?;
                    checkpoint_in(&mut *conn, &log, key.as_ref()).await?;
                }
                Ok(applied)
            })
        })
        .await
    }
}
