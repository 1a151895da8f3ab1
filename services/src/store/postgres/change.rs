//! Operator changes with their audit events: one transaction set to the tenant (and to
//! each log's tenant in turn for its event), so both commit together or not at all.

use async_trait::async_trait;

use super::audit::{append_audit_in, checkpoint_in};
use super::{PostgresStore, now};
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

/// Makes `change` inside the caller's transaction.
async fn change_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    change: Change,
) -> Result<Applied, StoreError> {
    let at = now();
    Ok(match change {
        Change::Record => Applied::Changed,
        Change::Policy(document) => {
            sqlx::query(
                "INSERT INTO policies (tenant_id, document, updated_at) VALUES ($1, $2, $3) \
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
                "INSERT INTO tenants (tenant_id, created_at) VALUES ($1, $2) \
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
                "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
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
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, jti) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(&token.jti)
            .bind(&token.subject)
            .bind(roles_text(&token)?)
            .bind(token.issued_at)
            .bind(token.expires_at)
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(token_exists(&token.jti));
            }
            Applied::Changed
        }
        Change::RevokeToken { jti, by } => {
            let revoked = sqlx::query(
                "UPDATE tokens SET revoked_at = $1, revoked_by = $2 \
                 WHERE tenant_id = $3 AND jti = $4 AND revoked_at IS NULL",
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
                sqlx::query_scalar("SELECT jti FROM tokens WHERE tenant_id = $1 AND jti = $2")
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
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (tenant_id, key) {on_conflict}"
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
                 VALUES ($1, $2, $3, $4::jsonb, $5, $5) \
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
                "DELETE FROM integrations WHERE tenant_id = $1 AND kind = $2 AND name = $3",
            )
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(name)
            .execute(&mut *conn)
            .await?;
            touched(deleted.rows_affected(), Applied::Missing)
        }
        Change::DeleteCredential { key } => {
            let deleted = sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.as_str())
                .bind(key)
                .execute(&mut *conn)
                .await?;
            touched(deleted.rows_affected(), Applied::Missing)
        }
        Change::ExposeCredential { key, exposed } => {
            let updated = sqlx::query(
                "UPDATE credentials SET exposed = $1, updated_at = $2 \
                 WHERE tenant_id = $3 AND key = $4",
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
impl ChangeRepository for PostgresStore {
    async fn apply_change(
        &self,
        tenant: &TenantId,
        change: Change,
        events: Vec<Recorded>,
    ) -> Result<Applied, StoreError> {
        let key = self.audit_key();
        let mut tx = self.write(tenant).await?;
        let applied = change_in(&mut tx, tenant, change).await?;
        if applied != Applied::Changed {
            // Nothing changed: nothing to commit and nothing to record.
            return Ok(applied);
        }
        let mut current = tenant.clone();
        for (log, event) in events {
            if log != current {
                sqlx::query("SELECT set_config('facio.tenant', $1, true)")
                    .bind(log.as_str())
                    .execute(&mut *tx)
                    .await?;
                current = log.clone();
            }
            append_audit_in(&mut tx, &log, event, None, key.as_ref()).await?;
            checkpoint_in(&mut tx, &log, key.as_ref()).await?;
        }
        self.commit(tx).await?;
        Ok(applied)
    }
}
