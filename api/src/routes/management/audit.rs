//! `GET /audit` (filtered by run, session, type and time), `/audit/tail` (the newest
//! events), `/audit/stats` (counts by type and whether the chain verifies) and
//! `/audit/runs/{runId}`: the tenant's audit log, read-only.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::domain::{RunId, SessionKey};
use facio_services::store::{AuditEvent, AuditEventKind, AuditFilter};
use serde::Deserialize;

use super::json::Params;
use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit", get(list))
        .route("/audit/tail", get(tail))
        .route("/audit/stats", get(stats))
        .route("/audit/runs/{run_id}", get(run))
        .route("/audit/export", get(export))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    #[param(format = DateTime)]
    since: Option<String>,
    #[param(format = DateTime)]
    until: Option<String>,
}

/// `GET /audit/export`: the tenant's whole chain (or a time range of it) as JSON
/// Lines, every field the chain commits to, for `facio audit verify --file`.
async fn export(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let filter = AuditFilter {
        since: time("since", q.since)?,
        until: time("until", q.until)?,
        ..AuditFilter::default()
    };
    let events = events(&state, &caller, &filter).await?;
    let mut body = String::new();
    for event in &events {
        let line = serde_json::to_string(event).map_err(|e| ApiError::internal(e.to_string()))?;
        body.push_str(&line);
        body.push('\n');
    }
    let disposition = format!("attachment; filename=\"audit-{}.jsonl\"", caller.tenant());
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/x-ndjson".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    #[param(value_type = Option<RunId>)]
    run: Option<String>,
    #[param(value_type = Option<SessionKey>)]
    session: Option<String>,
    /// One kind, or several separated by commas.
    #[serde(rename = "type")]
    #[param(
        pattern = "^((turn_started|turn_queued|model_call|tool_call|tool_denied|error|turn_finished|budget_exhausted|review_requested|review_delivered|review_decided|review_expired|review_cancelled|credential_changed|credential_read|settings_changed|session_deleted|workspace_changed|token_issued|token_revoked|policy_changed|tenant_created|session_stopped|mcp_server_changed|a2a_peer_changed|channel_message|channel_delivery|channel_changed)(,(turn_started|turn_queued|model_call|tool_call|tool_denied|error|turn_finished|budget_exhausted|review_requested|review_delivered|review_decided|review_expired|review_cancelled|credential_changed|credential_read|settings_changed|session_deleted|workspace_changed|token_issued|token_revoked|policy_changed|tenant_created|session_stopped|mcp_server_changed|a2a_peer_changed|channel_message|channel_delivery|channel_changed))*)?$"
    )]
    kind: Option<String>,
    #[param(format = DateTime)]
    since: Option<String>,
    #[param(format = DateTime)]
    until: Option<String>,
    limit: Option<u32>,
    actor: Option<String>,
    /// Text the event's data contains.
    q: Option<String>,
    /// The next page: events after this seq, oldest first.
    after: Option<i64>,
}

/// `type=a,b`: the kinds named, each known (`type=` names none: every kind).
fn kinds(list: Option<String>) -> Result<Vec<AuditEventKind>, ApiError> {
    list.iter()
        .filter(|l| !l.is_empty())
        .flat_map(|l| l.split(','))
        .map(|k| {
            AuditEventKind::parse(k).ok_or_else(|| {
                ApiError::invalid_request(Some("type"), format!("unknown event type {k:?}"))
            })
        })
        .collect()
}

pub(super) fn time(param: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::invalid_request(
                        Some(param),
                        format!("{param} must be an RFC 3339 time: {e}"),
                    )
                })
        })
        .transpose()
}

/// `GET /audit`: a page of events, oldest first with `after`, else newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct EventPage {
    events: Vec<AuditEvent>,
    /// With `after`: the `after` of the next page, when this one is full.
    next: Option<i64>,
}

/// `GET /audit/tail`: the newest events.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct EventList {
    events: Vec<AuditEvent>,
}

/// `GET /audit/runs/{runId}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunEvents {
    run_id: RunId,
    events: Vec<AuditEvent>,
}

/// `GET /audit/stats`: counts and what verifying the chains found.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Stats {
    total: usize,
    /// Events per kind.
    by_type: std::collections::BTreeMap<String, u64>,
    chain: Chain,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Chain {
    /// Every chain verifies.
    verified: bool,
    events_checked: i64,
    /// One per session, one for events outside sessions, and the older tenant-wide
    /// chain when there is one.
    chains: i64,
    /// Events no checkpoint names yet (the newest ones).
    unsealed: i64,
    checkpoints_checked: i64,
    /// The first event that does not verify, and why.
    first_broken: Option<Broken>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Broken {
    seq: i64,
    reason: String,
}

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<AuditQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let filter = AuditFilter {
        run_id: q
            .run
            .map(RunId::new)
            .transpose()
            .map_err(|e| ApiError::invalid_request(Some("run"), e.to_string()))?,
        session_key: q
            .session
            .map(SessionKey::new)
            .transpose()
            .map_err(|e| ApiError::invalid_request(Some("session"), e.to_string()))?,
        kind: None,
        kinds: kinds(q.kind)?,
        actor: q.actor,
        text: q.q.filter(|t| !t.is_empty()),
        after: q.after,
        since: time("since", q.since)?,
        until: time("until", q.until)?,
        limit: Some(q.limit.unwrap_or(500).min(5000)),
    };
    let events = events(&state, &caller, &filter).await?;
    // A full page has a next one to ask for.
    let next = (filter.after.is_some() && events.len() == filter.limit.unwrap_or(0) as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(EventPage { events, next }))
}

/// The caller's tenant's events (each route checks the role first).
async fn events(
    state: &AppState,
    caller: &Caller,
    filter: &AuditFilter,
) -> Result<Vec<AuditEvent>, ApiError> {
    state
        .runtime
        .store()
        .list_audit(caller.tenant(), filter)
        .await
        .map_err(store_error)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TailQuery {
    limit: Option<u32>,
}

async fn tail(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<TailQuery>,
) -> Result<Json<EventList>, ApiError> {
    let filter = AuditFilter {
        limit: Some(q.limit.unwrap_or(50).min(1000)),
        ..AuditFilter::default()
    };
    let events = events(&state, &caller, &filter).await?;
    Ok(Json(EventList { events }))
}

async fn stats(caller: Caller, State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let store = state.runtime.store();
    let events = events(&state, &caller, &AuditFilter::default()).await?;
    let mut by_type = std::collections::BTreeMap::<&str, u64>::new();
    for event in &events {
        *by_type.entry(event.kind.as_str()).or_default() += 1;
    }
    let chain = store
        .verify_audit(caller.tenant())
        .await
        .map_err(store_error)?;
    Ok(Json(Stats {
        total: events.len(),
        by_type: by_type
            .into_iter()
            .map(|(kind, n)| (kind.to_owned(), n))
            .collect(),
        chain: Chain {
            verified: chain.first_broken.is_none(),
            events_checked: chain.events_checked,
            chains: chain.chains,
            unsealed: chain.unsealed,
            checkpoints_checked: chain.checkpoints_checked,
            first_broken: chain
                .first_broken
                .map(|(seq, reason)| Broken { seq, reason }),
        },
    }))
}

async fn run(
    caller: Caller,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<RunEvents>, ApiError> {
    let run_id =
        RunId::new(run_id).map_err(|e| ApiError::not_found(format!("no such run: {e}")))?;
    let filter = AuditFilter {
        run_id: Some(run_id.clone()),
        ..AuditFilter::default()
    };
    let events = events(&state, &caller, &filter).await?;
    if events.is_empty() {
        return Err(ApiError::not_found(format!(
            "run {run_id} has no audit events"
        )));
    }
    Ok(Json(RunEvents { run_id, events }))
}
