//! `/channels`: the tenant's channels (`channels.webhooks` of the node's config whose
//! `tenant` is the caller's, and Placet when delivery is configured), and the
//! messages a channel could not deliver (its dead letters, kept in the audit log).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::config::WebhookChannel;
use facio_services::domain::TenantId;
use facio_services::store::{AuditEventKind, AuditFilter};
use serde_json::Value;

use super::Caller;
use crate::error::ApiError;
use crate::routes::AppState;

/// Most delivery records read for one answer.
const READ_AT_MOST: u32 = 5000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels", get(list))
        .route("/channels/{name}", get(show))
        .route("/channels/{name}/dead-letters", get(dead_letters))
}

/// A channel as the API shows it (never its secret).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelView {
    name: String,
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

fn tenants_channels<'a>(
    state: &'a AppState,
    tenant: &'a TenantId,
) -> impl Iterator<Item = (&'a String, &'a WebhookChannel)> + 'a {
    state
        .config
        .channels
        .webhooks
        .iter()
        .filter(move |(_, c)| c.belongs_to(tenant))
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

async fn views(state: &AppState, tenant: &TenantId) -> Result<Vec<ChannelView>, ApiError> {
    let letters = letters(state, tenant).await?;
    let count = |name: &str| letters.iter().filter(|(c, _)| c == name).count();
    let mut views: Vec<ChannelView> = tenants_channels(state, tenant)
        .map(|(name, c)| ChannelView {
            name: name.clone(),
            kind: "webhook",
            inbound_path: Some(format!("/hooks/{name}")),
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
    if !tenants_channels(&state, caller.tenant()).any(|(n, _)| *n == name) {
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
