//! `/settings`: what this tenant is held to (its own settings and the limits in
//! effect), and for the system tenant the node's configuration. Tenant settings apply
//! at once; node settings are saved to `settings.json` and apply on restart, and the
//! answer names every key still waiting for one.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use facio_services::config::{Config, SettingsError, TenantLimits};
use facio_services::domain::{TenantId, TenantSettings, TenantSettingsPatch};
use facio_services::store::{AuditEventKind, Change as StoreChange};
use facio_services::tenant_cache::TenantCacheEvent;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::Body;
use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/settings", get(show).patch(change))
}

/// `GET /settings`: the tenant's own settings and what is in effect; for the system
/// tenant also the node's configuration.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SettingsView {
    tenant: TenantId,
    /// The tenant's own settings (absent ones follow the config).
    settings: TenantSettings,
    effective: Effective,
    /// The node's configuration (system tenant only).
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<NodeView>,
}

/// What holds for the tenant now.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Effective {
    /// The models its runs may call (`null`: every model).
    models: Option<Vec<String>>,
    limits: TenantLimits,
}

/// The node's configuration, secrets masked.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct NodeView {
    /// The configuration it runs with.
    #[schema(value_type = Object)]
    config: Value,
    /// The node settings saved through this API (`settings.json`).
    #[schema(value_type = Object)]
    saved: Value,
    #[schema(value_type = String)]
    settings_file: std::path::PathBuf,
    /// The config keys `PATCH /settings` may change.
    changeable: Vec<&'static str>,
    /// Keys changed in the files since the node started: they apply on restart.
    restart_required: Vec<String>,
}

/// `PATCH /settings`: the settings now, with what was applied and saved.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Changed {
    #[serde(flatten)]
    view: SettingsView,
    /// The tenant settings applied (at once).
    applied: Vec<String>,
    /// The node settings saved (from the next start).
    saved: Vec<String>,
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(view(&state, caller.tenant()).await?))
}

/// A partial change: tenant settings, node settings (config keys), or both.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Change {
    #[serde(default, deserialize_with = "super::json::object")]
    tenant: Option<TenantSettingsPatch>,
    /// Node settings: config keys as in `config.json` (system tenant only).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    node: Option<Value>,
}

async fn change(
    caller: Caller,
    State(state): State<AppState>,
    Body(change): Body<Change>,
) -> Result<Json<Changed>, ApiError> {
    // In a task of its own: a client that hangs up mid-change cannot leave a change
    // applied without its audit event.
    let tenant = caller.tenant().clone();
    let (applied, saved) = tokio::spawn(apply(state.clone(), caller, change))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(Changed {
        view: view(&state, &tenant).await?,
        applied,
        saved,
    }))
}

/// Applies a change and records it; anything applied is taken back when the audit
/// event cannot be written. Returns the tenant keys applied and the node keys saved.
async fn apply(
    state: AppState,
    caller: Caller,
    change: Change,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let tenant = caller.tenant().clone();
    // Node settings first: they are the ones that can be refused after checking.
    let node_change = match change.node {
        Some(patch) => {
            let config = state.config.clone();
            Some(
                blocking(move || config.change_settings(patch))
                    .await?
                    .map_err(settings_error)?,
            )
        }
        None => None,
    };
    let saved = node_change
        .as_ref()
        .map(|c| c.keys.clone())
        .unwrap_or_default();
    let store = state.runtime.store();
    let mut data = json!({"node": saved});
    let mut applied = Vec::new();
    let mut stored = StoreChange::Record;
    if let Some(patch) = change.tenant {
        let before = store.tenant_settings(&tenant).await.map_err(store_error)?;
        applied = changed_keys(&patch);
        let mut after = before.clone();
        after.merge(patch);
        if after != before {
            data["tenant"] = before.changes(&after);
            stored = StoreChange::TenantSettings(after);
        }
    }
    let tenant_changed = matches!(stored, StoreChange::TenantSettings(_));
    if tenant_changed || !saved.is_empty() {
        // The tenant's settings and the event in one transaction; node settings (a
        // file) are taken back if that fails. Key names only for the node: its values
        // may name paths and hosts an auditor need not see.
        let logs = std::slice::from_ref(&tenant);
        let kind = AuditEventKind::SettingsChanged;
        let recorded = super::make_change(&state, &caller, &tenant, stored, logs, kind, data).await;
        if let Err(e) = recorded {
            if let Some(change) = node_change {
                let _ = blocking(move || change.undo()).await;
            }
            return Err(store_error(e));
        }
        if tenant_changed {
            state
                .runtime
                .tenant_cache()
                .changed(TenantCacheEvent::Settings(tenant.clone()));
        }
    }
    Ok((applied, saved))
}

/// Runs file work (reading and checking the config, writing settings.json) off the
/// async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn view(state: &AppState, tenant: &TenantId) -> Result<SettingsView, ApiError> {
    let settings = state
        .runtime
        .store()
        .tenant_settings(tenant)
        .await
        .map_err(store_error)?;
    let limits = state.config.limits.for_tenant(tenant, &settings);
    let mut body = SettingsView {
        tenant: tenant.clone(),
        effective: Effective {
            models: settings.models.clone(),
            limits,
        },
        settings,
        node: None,
    };
    // The node's configuration is shared by every tenant: only the system tenant's
    // callers see it.
    if *tenant == TenantId::default_tenant() {
        let running = masked(&state.config);
        // What the files say now against what they said at start: command-line flags
        // (--port, --workspace) apply to both, so only file changes show.
        let file = state.config.config_file.clone();
        let next = blocking(move || Config::load(file.as_deref()))
            .await?
            .map(|next| masked(&next))
            .map_err(|e| ApiError::internal(format!("the saved config does not load: {e}")))?;
        let mut pending = Vec::new();
        differences(&state.config_at_start, &next, "", &mut pending);
        let config = state.config.clone();
        let saved = blocking(move || config.saved_settings())
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        body.node = Some(NodeView {
            config: running,
            saved,
            settings_file: state.config.settings_file(),
            changeable: facio_services::config::CHANGEABLE_KEYS.to_vec(),
            restart_required: pending,
        });
    }
    Ok(body)
}

/// The tenant keys a patch sets, as the API spells them.
fn changed_keys(patch: &TenantSettingsPatch) -> Vec<String> {
    match serde_json::to_value(patch) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The config as JSON with every secret replaced by `"[set]"`.
pub(crate) fn masked(config: &Config) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    // An f32 widened to JSON's f64 shows as 0.10000000149011612; show what was written.
    if let Some(t) = value.pointer_mut("/agents/defaults/temperature") {
        *t = json!((f64::from(config.agents.defaults.temperature) * 1e6).round() / 1e6);
    }
    let set = |v: &mut Value| {
        if !v.is_null() {
            *v = json!("[set]");
        }
    };
    for path in [
        "/api/managementToken",
        "/api/a2aToken",
        "/api/metricsToken",
        "/auth/hs256Secret",
        "/auth/oidc/clientSecret",
        "/channels/placet/apiKey",
        "/cluster/internalToken",
    ] {
        if let Some(v) = value.pointer_mut(path) {
            set(v);
        }
    }
    // Values taken from the environment may be anything the process was given.
    for key in &config.from_environment {
        if let Some(v) = value.pointer_mut(&pointer(key)) {
            *v = json!("[from the environment]");
        }
    }
    if let Some(Value::Object(providers)) = value.pointer_mut("/providers") {
        for provider in providers.values_mut() {
            if let Some(v) = provider.get_mut("apiKey") {
                set(v);
            }
            if let Some(Value::Object(headers)) = provider.get_mut("extraHeaders") {
                headers.values_mut().for_each(set);
            }
        }
    }
    if let Some(Value::Object(headers)) = value.pointer_mut("/telemetry/headers") {
        headers.values_mut().for_each(set);
    }
    for (area, secret) in [
        ("/channels/webhooks", "secret"),
        ("/channels/telegram", "botToken"),
    ] {
        if let Some(Value::Object(channels)) = value.pointer_mut(area) {
            for channel in channels.values_mut() {
                if let Some(v) = channel.get_mut(secret) {
                    set(v);
                }
            }
        }
    }
    // MCP servers' env and header values, unless they are credential references.
    if let Some(Value::Object(servers)) = value.pointer_mut("/tools/mcpServers") {
        for server in servers.values_mut() {
            for field in ["env", "headers"] {
                if let Some(Value::Object(values)) = server.get_mut(field) {
                    for v in values.values_mut() {
                        let reference = v.as_str().is_some_and(|t| {
                            !facio_services::vault::placeholder_keys(t).is_empty()
                        });
                        if !reference {
                            set(v);
                        }
                    }
                }
            }
        }
    }
    for path in ["/storage/url", "/cluster/redisUrl"] {
        if let Some(url) = value.pointer_mut(path)
            && let Some(text) = url.as_str()
            && let Ok(mut parsed) = reqwest::Url::parse(text)
            && parsed.password().is_some()
            && parsed.set_password(Some("[set]")).is_ok()
        {
            *url = json!(parsed.to_string());
        }
    }
    value
}

/// The JSON pointer of a key path (`tools.exec.denyPatterns[2]` →
/// `/tools/exec/denyPatterns/2`).
fn pointer(key: &str) -> String {
    let mut out = String::new();
    for segment in key.split('.') {
        let mut parts = segment.split('[');
        if let Some(name) = parts.next() {
            out.push('/');
            out.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for index in parts {
            out.push('/');
            out.push_str(index.trim_end_matches(']'));
        }
    }
    out
}

/// Key paths where `a` and `b` differ.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let null = Value::Null;
                differences(
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    &child,
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

fn settings_error(e: SettingsError) -> ApiError {
    match &e {
        SettingsError::Write { .. } => ApiError::internal(e.to_string()),
        _ => {
            let param = e.key().map(|key| format!("node.{key}"));
            ApiError::unprocessable(param.as_deref(), format!("node: {e}"))
        }
    }
}
