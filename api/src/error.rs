//! The gateway's error type: every failure answers JSON in the OpenAI error shape
//! `{"error":{"message","type","param","code"}}` with a fitting status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An HTTP error with a stable machine code and a human message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub param: Option<String>,
    pub message: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            param: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed; `param` names the offending field.
    pub fn invalid_request(param: Option<&str>, message: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message,
        );
        error.param = param.map(str::to_owned);
        error
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            message,
        )
    }

    /// 502: the model provider failed.
    pub fn upstream(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            "provider_error",
            message,
        )
    }

    /// 503: the node is shutting down or overloaded.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "unavailable",
            message,
        )
    }

    /// 503 with `Retry-After`: the store's write queue is full; nothing was stored.
    pub fn busy(message: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "busy",
            message,
        );
        error.retry_after = Some(1);
        error
    }

    /// 409: the turn was cancelled before it finished.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "api_error", "cancelled", message)
    }

    /// 401: no or a wrong bearer token. Never echoes the token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "unauthorized",
            message,
        )
    }

    /// 429: over a rate limit; `Retry-After` says when to come back.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limited",
            message,
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// 408: the client stopped sending its request before it was complete.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            message,
        )
    }

    /// 413: a body or file over the size the route accepts.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "too_large",
            message,
        )
    }

    /// 403: the tenant's model allow list does not include `model`.
    pub fn model_not_allowed(model: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "model_not_allowed",
            format!("this tenant may not use the model {model}"),
        )
    }

    /// 403: authenticated, but the role does not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "forbidden",
            message,
        )
    }

    /// 409: the target is not in a state that allows this (e.g. a closed review).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
    }

    /// 422: well-formed JSON that does not fit; `param` names the field.
    pub fn unprocessable(param: Option<&str>, message: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "invalid_value",
            message,
        );
        error.param = param.map(str::to_owned);
        error
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            message,
        )
    }

    /// The JSON body, for places that send it outside a response (SSE error frames).
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        })
        .unwrap_or_else(|_| serde_json::json!({"error": {"message": self.message}}))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// The error code of a node that is shutting down: nothing was stored, and the
/// request can go to another node at once.
pub(crate) const SHUTTING_DOWN: &str = "shutting_down";

impl From<facio_actors::RuntimeError> for ApiError {
    fn from(e: facio_actors::RuntimeError) -> Self {
        match e {
            facio_actors::RuntimeError::ShuttingDown => {
                let mut error = Self::unavailable(e.to_string());
                error.code = SHUTTING_DOWN;
                error.retry_after = Some(1);
                error
            }
            facio_actors::RuntimeError::Busy(_) => Self::busy(e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}
