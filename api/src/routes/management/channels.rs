//! `/channels`: the tenant's channels (`channels.webhooks` of the node's config whose
//! `tenant` is the caller's, and Placet when delivery is configured), and the
//! messages a channel could not deliver (its dead letters, kept in the audit log).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::channels::ChannelSource;
use facio_services::config::WebhookChannel;
use facio_services::domain::TenantId;
use facio_services::store::{AuditEventKind, AuditFilter};
use facio_services::store::{Change, IntegrationKind};
use serde::Deserialize;
use serde_json::Value;

use super::Caller;
use crate::error::ApiError;
use crate::routes::AppState;

/// Most delivery records read for one answer.
const READ_AT_MOST: u32 = 5000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels", get(list))
        .route("/channels/{name}", get(show).put(put).delete(remove))
        .route("/channels/{name}/dead-letters", get(dead_letters))
}

/// A channel as the API shows it (never its secret).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelView {
    name: String,
    /// `config` (the node's) or `tenant` (added through this API).
    source: &'static str,
    /// `webhook`, `telegram` or `placet`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// Where signed messages come in (webhooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    inbound_path: Option<String>,
    allow_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outbound_url: Option<String>,
    max_attempts: u32,
    /// Who may decide reviews from the channel (Telegram).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reviewers: Vec<String>,
    /// Messages it gave up on.
    dead_letters: usize,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ChannelList {
    channels: Vec<ChannelView>,
}

/// An outbound message every attempt failed for.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeadLetter {
    /// The audit event's seq.
    seq: i64,
    at: DateTime<Utc>,
    #[schema(value_type = Object)]
    to: Value,
    #[schema(value_type = Object)]
    in_reply_to: Value,
    #[schema(value_type = Object)]
    run_id: Value,
    attempts: u64,
    error: String,
    /// What was to be sent.
    text: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeadLetters {
    dead_letters: Vec<DeadLetter>,
}

async fn letters(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Vec<(String, DeadLetter)>, ApiError> {
    let events = state
        .runtime
        .store()
        .list_audit(
            tenant,
            &AuditFilter {
                kind: Some(AuditEventKind::ChannelDelivery),
                limit: Some(READ_AT_MOST),
                ..AuditFilter::default()
            },
        )
        .await
        .map_err(super::store_error)?;
    Ok(events
        .into_iter()
        .filter(|e| e.data["status"] == "dead_letter")
        .map(|e| {
            let channel = e.data["channel"].as_str().unwrap_or_default().to_owned();
            let letter = DeadLetter {
                seq: e.seq,
                at: e.created_at,
                to: e.data["to"].clone(),
                in_reply_to: e.data["inReplyTo"].clone(),
                run_id: e.data["runId"].clone(),
                attempts: e.data["attempts"].as_u64().unwrap_or(0),
                error: e.data["error"].as_str().unwrap_or_default().to_owned(),
                text: e.data["text"].as_str().unwrap_or_default().to_owned(),
            };
            (channel, letter)
        })
        .collect())
}

async fn webhooks(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Vec<(String, WebhookChannel, ChannelSource)>, ApiError> {
    facio_services::channels::tenant_channels(
        &state.config.channels.webhooks,
        state.runtime.store().as_ref(),
        tenant,
    )
    .await
    .map_err(super::store_error)
}

async fn views(state: &AppState, tenant: &TenantId) -> Result<Vec<ChannelView>, ApiError> {
    let letters = letters(state, tenant).await?;
    let count = |name: &str| letters.iter().filter(|(c, _)| c == name).count();
    let mut views: Vec<ChannelView> = webhooks(state, tenant)
        .await?
        .iter()
        .map(|(name, c, source)| ChannelView {
            name: name.clone(),
            source: match source {
                ChannelSource::Config => "config",
                ChannelSource::Tenant => "tenant",
            },
            kind: "webhook",
            inbound_path: Some(match source {
                ChannelSource::Config => format!("/hooks/{name}"),
                ChannelSource::Tenant => format!("/hooks/{tenant}/{name}"),
            }),
            allow_from: c.allow_from.clone(),
            outbound_url: c.outbound_url.clone(),
            max_attempts: c.max_attempts,
            reviewers: Vec::new(),
            dead_letters: count(name),
        })
        .collect();
    for (name, bot) in &state.config.channels.telegram {
        if bot.belongs_to(tenant) {
            views.push(ChannelView {
                name: name.clone(),
                source: "config",
                kind: "telegram",
                inbound_path: None,
                allow_from: bot.allow_from.clone(),
                outbound_url: None,
                max_attempts: 1,
                reviewers: bot.reviewers.clone(),
                dead_letters: 0,
            });
        }
    }
    if *tenant == TenantId::default_tenant() && state.config.channels.placet.delivery().is_some() {
        views.push(ChannelView {
            name: "placet".to_owned(),
            source: "config",
            kind: "placet",
            inbound_path: None,
            allow_from: Vec::new(),
            outbound_url: state.config.channels.placet.instance_url.clone(),
            max_attempts: 1,
            reviewers: Vec::new(),
            dead_letters: 0,
        });
    }
    Ok(views)
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ChannelList>, ApiError> {
    Ok(Json(ChannelList {
        channels: views(&state, caller.tenant()).await?,
    }))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    views(&state, caller.tenant())
        .await?
        .into_iter()
        .find(|v| v.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("there is no channel named {name}")))
}

async fn dead_letters(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DeadLetters>, ApiError> {
    if !webhooks(&state, caller.tenant())
        .await?
        .iter()
        .any(|(n, _, _)| *n == name)
    {
        return Err(ApiError::not_found(format!(
            "there is no channel named {name}"
        )));
    }
    let dead_letters = letters(&state, caller.tenant())
        .await?
        .into_iter()
        .filter(|(c, _)| *c == name)
        .map(|(_, letter)| letter)
        .collect();
    Ok(Json(DeadLetters { dead_letters }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) enum WebhookType {
    #[serde(rename = "webhook")]
    Webhook,
}

/// A webhook channel of the tenant's own. Its inbound path is
/// `/hooks/<tenant>/<name>`; its secret a credential reference.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ChannelBody {
    #[serde(rename = "type")]
    kind: WebhookType,
    /// `${credentials.KEY}`: the HMAC secret, from the tenant's credentials.
    #[schema(pattern = "^\\$\\{credentials\\.[A-Za-z_][A-Za-z0-9_]{0,127}\\}$")]
    secret: String,
    #[serde(default)]
    allow_from: Vec<String>,
    #[schema(pattern = "^https?://\\S+$")]
    outbound_url: Option<String>,
    #[schema(minimum = 1, maximum = 20)]
    max_attempts: Option<u32>,
    #[schema(maximum = 600000)]
    retry_backoff_ms: Option<u64>,
    #[schema(minimum = 1, maximum = 86400)]
    replay_window_s: Option<u64>,
}

fn channel_name(name: &str) -> Result<(), ApiError> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if fine {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            None,
            "a channel name is 1-64 letters, digits, '-' or '_'",
        ))
    }
}

async fn put(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    super::json::Body(body): super::json::Body<ChannelBody>,
) -> Result<Json<ChannelView>, ApiError> {
    channel_name(&name)?;
    let tenant = caller.tenant().clone();
    if state.config.channels.webhooks.contains_key(&name)
        || state.config.channels.telegram.contains_key(&name)
        || name == "placet"
    {
        return Err(ApiError::conflict(
            "channel_in_config",
            format!("{name} is a channel of the node's config; choose another name"),
        ));
    }
    let keys = facio_services::vault::placeholder_keys(&body.secret);
    if keys.len() != 1 || body.secret != format!("${{credentials.{}}}", keys[0]) {
        return Err(ApiError::invalid_request(
            Some("secret"),
            "secret must be a credential reference, ${credentials.KEY}",
        ));
    }
    let _ = body.kind;
    let channel = WebhookChannel {
        secret: body.secret,
        tenant: Some(tenant.to_string()),
        allow_from: body.allow_from,
        outbound_url: body.outbound_url,
        max_attempts: body.max_attempts.unwrap_or(5),
        retry_backoff_ms: body.retry_backoff_ms.unwrap_or(500),
        replay_window_s: body.replay_window_s.unwrap_or(300),
    };
    if let Some((field, problem)) = channel.problem() {
        return Err(ApiError::invalid_request(Some(field), problem));
    }
    let definition =
        serde_json::to_value(&channel).map_err(|e| ApiError::internal(e.to_string()))?;
    let data = serde_json::json!({"channel": name, "action": "put", "type": "webhook",
        "allowFrom": channel.allow_from, "outboundUrl": channel.outbound_url, "secret": channel.secret});
    super::make_change(
        &state,
        &caller,
        &tenant,
        Change::PutIntegration {
            kind: IntegrationKind::Channel,
            name: name.clone(),
            definition,
            replace: true,
        },
        std::slice::from_ref(&tenant),
        AuditEventKind::ChannelChanged,
        data,
    )
    .await
    .map_err(super::store_error)?;
    views(&state, &tenant)
        .await?
        .into_iter()
        .find(|v| v.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::internal("the channel was stored but is not listed"))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant().clone();
    let applied = super::make_change(
        &state,
        &caller,
        &tenant,
        Change::DeleteIntegration {
            kind: IntegrationKind::Channel,
            name: name.clone(),
        },
        std::slice::from_ref(&tenant),
        AuditEventKind::ChannelChanged,
        serde_json::json!({"channel": name, "action": "removed"}),
    )
    .await
    .map_err(super::store_error)?;
    if applied == facio_services::store::Applied::Missing {
        let configured = state.config.channels.webhooks.contains_key(&name)
            || state.config.channels.telegram.contains_key(&name);
        return Err(if configured {
            ApiError::conflict(
                "channel_in_config",
                format!("{name} is a channel of the node's config; change it there"),
            )
        } else {
            ApiError::not_found(format!("there is no channel named {name}"))
        });
    }
    Ok(StatusCode::NO_CONTENT)
}
