//! A deadline between the pieces of a request body: a client that sends headers and
//! then trickles its body (or stops) is answered 408 instead of holding the handler.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio_stream::StreamExt;

/// The body stopped arriving for longer than the configured idle time.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no part of the request body for {0}s")]
pub(crate) struct BodyStalled(pub u64);

/// Wraps every request body so each piece must arrive within `idle` of the last.
pub(crate) async fn idle_deadline(
    State(idle): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let seconds = idle.as_secs();
    let pieces = body
        .into_data_stream()
        .timeout(idle)
        .map(move |piece| match piece {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(axum::BoxError::from(e)),
            Err(_) => Err(axum::BoxError::from(BodyStalled(seconds))),
        });
    next.run(Request::from_parts(parts, Body::from_stream(pieces)))
        .await
}

/// Whether reading a body failed because the client stalled (searched through the
/// error's sources, where axum's rejections keep it).
pub(crate) fn stalled<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyStalled> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(stalled) = e.downcast_ref::<BodyStalled>() {
            return Some(stalled);
        }
        current = e.source();
    }
    None
}

/// The error for a body that could not be read: 408 when the client stalled, 413 when
/// it was over the size limit, else 400 with `message`.
pub(crate) fn unreadable(
    error: &(dyn std::error::Error + 'static),
    status: axum::http::StatusCode,
    message: String,
) -> crate::error::ApiError {
    use crate::error::ApiError;
    if let Some(stalled) = stalled(error) {
        return ApiError::timeout(stalled.to_string());
    }
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large(message);
    }
    ApiError::invalid_request(None, message)
}
