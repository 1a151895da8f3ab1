//! `GET /audit`: the tenant's audit events, filtered by run, session, type and time.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::domain::{RunId, SessionKey};
use facio_services::store::{AuditEventKind, AuditFilter};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, store_error};
use crate::error::ApiError;
use crate::routes::AppState;
use facio_services::auth::Role;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    run: Option<String>,
    session: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
}

fn time(param: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
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

async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Operator])?;
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
        kind: q
            .kind
            .map(|k| {
                AuditEventKind::parse(&k).ok_or_else(|| {
                    ApiError::invalid_request(Some("type"), format!("unknown event type {k:?}"))
                })
            })
            .transpose()?,
        since: time("since", q.since)?,
        until: time("until", q.until)?,
        limit: Some(q.limit.unwrap_or(500).min(5000)),
    };
    let events = state
        .runtime
        .store()
        .list_audit(caller.tenant(), &filter)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"events": events})))
}
