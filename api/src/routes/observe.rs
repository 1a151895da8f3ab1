//! `GET /metrics` (Prometheus text) and the span every HTTP request runs in.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use facio_services::telemetry::{self, metrics};
use opentelemetry::KeyValue;
use tracing::Instrument;

use super::AppState;
use crate::error::ApiError;

/// `GET /metrics`: every instrument as Prometheus text, for a scraper holding the
/// metrics token (`api.metricsToken`) or the management token.
pub(crate) async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = super::identity::bearer(&headers).map(str::trim);
    let accepted = [&state.metrics_token, &state.management_token]
        .into_iter()
        .flatten()
        .any(|token| {
            presented
                .is_some_and(|p| facio_services::auth::same_secret(p.as_bytes(), token.as_bytes()))
        });
    if !accepted {
        let reason = if state.metrics_token.is_none() && state.management_token.is_none() {
            "no metrics token is configured (api.metricsToken or FACIO_METRICS_TOKEN)"
        } else {
            "GET /metrics needs the metrics token or the management token as a bearer token"
        };
        return ApiError::unauthorized(reason).into_response();
    }
    refresh_gauges(&state).await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::prometheus_text(),
    )
        .into_response()
}

/// Reads what the gauges show (live sessions, pending reviews, the store's queue).
pub(crate) async fn refresh_gauges(state: &AppState) {
    let m = metrics();
    if let Ok(active) = state.runtime.active_sessions().await {
        m.active_sessions
            .record(u64::try_from(active).unwrap_or(u64::MAX), &[]);
    }
    let store = state.runtime.store();
    m.store_queue.record(store.counts().queued, &[]);
    match store.count_pending_reviews().await {
        Ok(pending) => m.pending_reviews.record(pending, &[]),
        Err(e) => tracing::debug!(error = %e, "counting pending reviews for the metrics"),
    }
}

/// Runs the request in a server span named `METHOD /route`, continuing the trace of
/// an incoming `traceparent` (a client's, or the node that forwarded the request),
/// and records its duration.
pub(crate) async fn http_span(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.clone(),
    };
    let span = tracing::info_span!(
        "http",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        http.route = route.as_deref().unwrap_or_default(),
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    telemetry::continue_from_headers(&span, request.headers());
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if response.status().is_server_error() {
        telemetry::set_error(&span, &status.to_string());
    }
    if route.is_some() {
        metrics().http_duration.record(
            started.elapsed().as_secs_f64(),
            &[
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", route.unwrap_or_default()),
                KeyValue::new("http.response.status_code", i64::from(status)),
            ],
        );
    }
    response
}
