//! `/credentials`: the tenant's secrets, encrypted at rest. Values go in and never
//! come out: listings and reads show a mask, and every read and change is audited by
//! key alone. A credential may carry a `scope` (scoped access): the tools, and for
//! `exec` the command globs, it resolves in; the scope is sealed with the value.
//! `/credentials/providers` holds the model providers' API keys (system tenant only),
//! used from the next start.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::domain::TenantId;
use facio_services::review::SecretString;
use facio_services::store::{Applied, AuditEventKind, Change, CredentialRow, StoreError};
use facio_services::tenant_cache::TenantCacheEvent;
use facio_services::vault::{CredentialScope, provider_key, valid_key};
use serde::Deserialize;
use serde_json::json;

use super::json::Body;
use super::{Caller, audit_change, make_change, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

/// Longest value accepted: credentials are keys and passwords, not documents.
const MAX_VALUE_CHARS: usize = 16 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/credentials", get(list).post(create))
        .route(
            "/credentials/providers",
            get(list_providers).post(create_provider),
        )
        .route(
            "/credentials/providers/{name}",
            put(put_provider).delete(delete_provider),
        )
        .route("/credentials/{key}", get(show).put(replace).delete(remove))
        .route("/credentials/{key}/exposed", put(set_exposed))
}

/// The last characters of long values, so an operator can tell keys apart; short
/// values show nothing.
fn mask(value: &SecretString) -> String {
    let text = value.expose_secret();
    let count = text.chars().count();
    if count < 16 {
        return "••••••••".to_owned();
    }
    let tail: String = text.chars().skip(count - 4).collect();
    format!("••••••••{tail}")
}

/// The stored value, masked.
fn masked(state: &AppState, row: &CredentialRow) -> String {
    opened(state, row).0
}

/// The stored value masked, and its scope.
fn opened(state: &AppState, row: &CredentialRow) -> (String, Option<CredentialScope>) {
    state
        .runtime
        .vault()
        .open_credential(&row.sealed)
        .map_or_else(
            |_| ("(cannot be opened with this master key)".to_owned(), None),
            |(value, scope)| (mask(&value), scope),
        )
}

/// A credential as the API shows it: never its value.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CredentialView {
    key: String,
    /// `••••••••` and, for values of 16 characters or more, the last four.
    masked: String,
    /// In every command's environment.
    exposed: bool,
    /// The tools and commands it is limited to (`null`: no limit).
    scope: Option<CredentialScope>,
    updated_at: DateTime<Utc>,
}

/// `GET /credentials`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct CredentialList {
    credentials: Vec<CredentialView>,
}

/// Where a provider's API key comes from.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProviderView {
    name: String,
    /// `vault` (stored here), `config` or `none`.
    #[schema(pattern = "^(vault|config|none)$")]
    source: &'static str,
    /// The stored key, masked (only when `source` is `vault`).
    #[serde(skip_serializing_if = "Option::is_none")]
    masked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<DateTime<Utc>>,
}

/// `GET /credentials/providers`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ProviderList {
    providers: Vec<ProviderView>,
}

/// A provider's key stored: the node uses it from its next start.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProviderStored {
    name: String,
    #[schema(pattern = "^vault$")]
    source: &'static str,
    restart_required: bool,
}

fn entry(state: &AppState, row: &CredentialRow) -> CredentialView {
    let (masked, scope) = opened(state, row);
    CredentialView {
        key: row.key.clone(),
        masked,
        exposed: row.exposed,
        scope,
        updated_at: row.updated_at,
    }
}

/// A scope the runtime can apply; an exposed credential's scope must include `exec`
/// (exposure is the environment of commands).
fn check_scope(scope: Option<&CredentialScope>, exposed: bool) -> Result<(), ApiError> {
    let Some(scope) = scope else {
        return Ok(());
    };
    scope
        .validate()
        .map_err(|e| ApiError::unprocessable(Some("scope"), e.to_string()))?;
    if exposed && !scope.allows_tool("exec") {
        return Err(ApiError::unprocessable(
            Some("scope"),
            "an exposed credential is set in commands' environment, so its scope.tools must \
             include exec",
        ));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if valid_key(key) {
        return Ok(());
    }
    Err(ApiError::unprocessable(
        Some("key"),
        "key must be letters, digits and _, not starting with a digit (it doubles as an \
         environment variable name), at most 128 characters",
    ))
}

fn check_value(param: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > MAX_VALUE_CHARS {
        return Err(ApiError::unprocessable(
            Some(param),
            format!("{param} must be between 1 and {MAX_VALUE_CHARS} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(ApiError::unprocessable(
            Some(param),
            format!("{param} must not contain NUL characters (no environment variable can)"),
        ));
    }
    Ok(())
}

async fn find(state: &AppState, tenant: &TenantId, key: &str) -> Result<CredentialRow, ApiError> {
    let rows = state
        .runtime
        .store()
        .list_credentials(tenant)
        .await
        .map_err(store_error)?;
    rows.into_iter()
        .find(|r| r.key == key)
        .ok_or_else(|| ApiError::not_found(format!("credential {key} does not exist")))
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<CredentialList>, ApiError> {
    let rows = state
        .runtime
        .store()
        .list_credentials(caller.tenant())
        .await
        .map_err(store_error)?;
    let credentials = rows
        .iter()
        .filter(|r| valid_key(&r.key))
        .map(|r| entry(&state, r))
        .collect();
    Ok(Json(CredentialList { credentials }))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<CredentialView>, ApiError> {
    if !valid_key(&key) {
        return Err(ApiError::not_found(format!(
            "credential {key} does not exist"
        )));
    }
    let row = find(&state, caller.tenant(), &key).await?;
    audit_change(
        &state,
        &caller,
        caller.tenant(),
        AuditEventKind::CredentialRead,
        json!({"key": key, "source": "api"}),
    )
    .await?;
    Ok(Json(entry(&state, &row)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCredential {
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    key: String,
    #[schema(min_length = 1, max_length = 16384, pattern = "^[^\\x00]+$")]
    value: String,
    #[serde(default)]
    exposed: bool,
    /// Where it may be used; absent: every tool.
    #[serde(default, deserialize_with = "super::json::object")]
    scope: Option<CredentialScope>,
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewCredential>,
) -> Result<(StatusCode, Json<CredentialView>), ApiError> {
    check_key(&body.key)?;
    check_value("value", &body.value)?;
    check_scope(body.scope.as_ref(), body.exposed)?;
    let sealed = seal_scoped(&state, body.value, body.scope.as_ref())?;
    let created = Change::PutCredential {
        key: body.key.clone(),
        sealed,
        exposed: body.exposed,
        replace: false,
    };
    let made = Made::new(
        &body.key,
        "created",
        Some(body.exposed),
        body.scope.as_ref(),
    );
    made.apply(&state, &caller, created)
        .await
        .map_err(|e| exists_or(e, None))?;
    let row = find(&state, caller.tenant(), &body.key).await?;
    Ok((StatusCode::CREATED, Json(entry(&state, &row))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewValue {
    #[schema(min_length = 1, max_length = 16384, pattern = "^[^\\x00]+$")]
    value: String,
    exposed: Option<bool>,
    /// Absent: the scope stays; `null`: the credential is no longer scoped.
    #[serde(default, deserialize_with = "super::json::present_object")]
    scope: Option<Option<CredentialScope>>,
}

async fn replace(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
    Body(body): Body<NewValue>,
) -> Result<Json<CredentialView>, ApiError> {
    check_key(&key)?;
    check_value("value", &body.value)?;
    let store = state.runtime.store();
    let before = store
        .get_credential(caller.tenant(), &key)
        .await
        .map_err(store_error)?;
    let exposed = body
        .exposed
        .unwrap_or_else(|| before.as_ref().is_some_and(|(_, e)| *e));
    let scope = match body.scope {
        Some(scope) => scope,
        None => match &before {
            Some((sealed, _)) => {
                state
                    .runtime
                    .vault()
                    .open_credential(sealed)
                    .map_err(|e| ApiError::internal(format!("credential vault: {e}")))?
                    .1
            }
            None => None,
        },
    };
    check_scope(scope.as_ref(), exposed)?;
    let sealed = seal_scoped(&state, body.value, scope.as_ref())?;
    let action = if before.is_some() {
        "updated"
    } else {
        "created"
    };
    let put = Change::PutCredential {
        key: key.clone(),
        sealed,
        exposed,
        replace: true,
    };
    Made::new(&key, action, Some(exposed), scope.as_ref())
        .apply(&state, &caller, put)
        .await
        .map_err(store_error)?;
    let row = find(&state, caller.tenant(), &key).await?;
    Ok(Json(entry(&state, &row)))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = valid_key(&key)
        && Made::new(&key, "deleted", None, None)
            .apply(
                &state,
                &caller,
                Change::DeleteCredential { key: key.clone() },
            )
            .await
            .map_err(store_error)?
            == Applied::Changed;
    if !deleted {
        return Err(ApiError::not_found(format!(
            "credential {key} does not exist"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Exposure {
    exposed: bool,
}

async fn set_exposed(
    caller: Caller,
    State(state): State<AppState>,
    Path(key): Path<String>,
    Body(body): Body<Exposure>,
) -> Result<Json<CredentialView>, ApiError> {
    let scope = if valid_key(&key) {
        let row = find(&state, caller.tenant(), &key).await?;
        opened(&state, &row).1
    } else {
        None
    };
    check_scope(scope.as_ref(), body.exposed)?;
    let exposure = Change::ExposeCredential {
        key: key.clone(),
        exposed: body.exposed,
    };
    let found = valid_key(&key)
        && Made::new(&key, "exposed", Some(body.exposed), scope.as_ref())
            .apply(&state, &caller, exposure)
            .await
            .map_err(store_error)?
            == Applied::Changed;
    if !found {
        return Err(ApiError::not_found(format!(
            "credential {key} does not exist"
        )));
    }
    let row = find(&state, caller.tenant(), &key).await?;
    Ok(Json(entry(&state, &row)))
}

fn seal(state: &AppState, value: String) -> Result<facio_services::vault::Sealed, ApiError> {
    seal_scoped(state, value, None)
}

fn seal_scoped(
    state: &AppState,
    value: String,
    scope: Option<&CredentialScope>,
) -> Result<facio_services::vault::Sealed, ApiError> {
    state
        .runtime
        .vault()
        .seal_credential(&SecretString::new(value), scope)
        .map_err(|e| ApiError::internal(format!("credential vault: {e}")))
}

/// A credential change as the record shows it: the key, with the exposure and scope
/// it leaves (never the value).
struct Made<'a> {
    key: &'a str,
    action: &'a str,
    exposed: Option<bool>,
    scope: Option<&'a CredentialScope>,
}

impl<'a> Made<'a> {
    fn new(
        key: &'a str,
        action: &'a str,
        exposed: Option<bool>,
        scope: Option<&'a CredentialScope>,
    ) -> Self {
        Self {
            key,
            action,
            exposed,
            scope,
        }
    }

    /// Makes `change` and records it in one transaction.
    async fn apply(
        &self,
        state: &AppState,
        caller: &Caller,
        change: Change,
    ) -> Result<Applied, StoreError> {
        let data = json!({
            "key": self.key,
            "action": self.action,
            "exposed": self.exposed,
            "scope": self.scope,
            "source": "api",
        });
        let tenant = caller.tenant();
        let logs = std::slice::from_ref(tenant);
        let kind = AuditEventKind::CredentialChanged;
        let applied = make_change(state, caller, tenant, change, logs, kind, data).await?;
        if applied == Applied::Changed {
            credentials_changed(state, tenant);
        }
        Ok(applied)
    }
}

/// 409 for a key that exists (with `message`, or the store's), else the store error.
fn exists_or(e: StoreError, message: Option<String>) -> ApiError {
    match e {
        StoreError::Conflict(stored) => {
            ApiError::conflict("credential_exists", message.unwrap_or(stored))
        }
        other => store_error(other),
    }
}

fn configured(state: &AppState, name: &str) -> Result<(), ApiError> {
    if state.config.providers.contains_key(name) {
        return Ok(());
    }
    Err(ApiError::unprocessable(
        Some("name"),
        format!("no provider named {name} is configured (providers.{name} in config)"),
    ))
}

async fn list_providers(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ProviderList>, ApiError> {
    let rows = state
        .runtime
        .store()
        .list_credentials(caller.tenant())
        .await
        .map_err(store_error)?;
    let providers = state
        .config
        .providers
        .iter()
        .map(|(name, provider)| {
            let stored = rows.iter().find(|r| r.key == provider_key(name));
            let source = match (stored, &provider.api_key) {
                (Some(_), _) => "vault",
                (None, Some(_)) => "config",
                (None, None) => "none",
            };
            ProviderView {
                name: name.clone(),
                source,
                masked: stored.map(|row| masked(&state, row)),
                updated_at: stored.map(|row| row.updated_at),
            }
        })
        .collect();
    Ok(Json(ProviderList { providers }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewProviderKey {
    /// A provider configured on this node (`providers.<name>`).
    name: String,
    #[schema(min_length = 1, max_length = 16384, pattern = "^[^\\x00]+$")]
    api_key: String,
}

async fn create_provider(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewProviderKey>,
) -> Result<(StatusCode, Json<ProviderStored>), ApiError> {
    configured(&state, &body.name)?;
    check_value("apiKey", &body.api_key)?;
    let sealed = seal(&state, body.api_key)?;
    let key = provider_key(&body.name);
    let created = Change::PutCredential {
        key: key.clone(),
        sealed,
        exposed: false,
        replace: false,
    };
    let taken = format!(
        "provider {} already has a stored key; PUT replaces it",
        body.name
    );
    Made::new(&key, "created", None, None)
        .apply(&state, &caller, created)
        .await
        .map_err(|e| exists_or(e, Some(taken)))?;
    Ok((
        StatusCode::CREATED,
        Json(ProviderStored {
            name: body.name,
            source: "vault",
            restart_required: true,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ProviderKey {
    #[schema(min_length = 1, max_length = 16384, pattern = "^[^\\x00]+$")]
    api_key: String,
}

async fn put_provider(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(body): Body<ProviderKey>,
) -> Result<Json<ProviderStored>, ApiError> {
    configured(&state, &name)?;
    check_value("apiKey", &body.api_key)?;
    let sealed = seal(&state, body.api_key)?;
    let key = provider_key(&name);
    let put = Change::PutCredential {
        key: key.clone(),
        sealed,
        exposed: false,
        replace: true,
    };
    Made::new(&key, "updated", None, None)
        .apply(&state, &caller, put)
        .await
        .map_err(store_error)?;
    Ok(Json(ProviderStored {
        name,
        source: "vault",
        restart_required: true,
    }))
}

async fn delete_provider(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key = provider_key(&name);
    let deleted = Made::new(&key, "deleted", None, None)
        .apply(
            &state,
            &caller,
            Change::DeleteCredential { key: key.clone() },
        )
        .await
        .map_err(store_error)?;
    if deleted != Applied::Changed {
        return Err(ApiError::not_found(format!(
            "provider {name} has no stored key"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A credential of `tenant` was written: turns open the new set.
fn credentials_changed(state: &AppState, tenant: &TenantId) {
    state
        .runtime
        .tenant_cache()
        .changed(TenantCacheEvent::Credentials(tenant.clone()));
}
