//! Every request has an id: the caller's `X-Request-Id` when it is a plausible one
//! (1 to 128 characters of letters, digits and `-_.:`), otherwise a fresh one. It is
//! echoed on the response and recorded on the audit events the request causes, so an
//! operator can match a change in the record to the call that made it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub(crate) const HEADER: &str = "x-request-id";

/// The id of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(String);

impl RequestId {
    /// A new id (`req_` and a UUIDv7).
    pub fn fresh() -> Self {
        Self(format!("req_{}", uuid::Uuid::now_v7().simple()))
    }

    /// The caller's id, if it is one this server repeats.
    fn given(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?;
        let plausible = (1..=128).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        plausible.then(|| Self(text.to_owned()))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gives the request its id and the response the same id.
pub(crate) async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(RequestId::given)
        .unwrap_or_else(RequestId::fresh);
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        request.headers_mut().insert(HEADER, value.clone());
        request.extensions_mut().insert(id);
        let mut response = next.run(request).await;
        response.headers_mut().insert(HEADER, value);
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_ids_are_repeated() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(
            RequestId::given(&ok).map(|r| r.to_string()),
            Some("abc-123_x.y:z".to_owned())
        );
        for bad in ["", "has space", "new\u{7f}line", &"x".repeat(129)] {
            if let Ok(value) = HeaderValue::from_str(bad) {
                assert_eq!(RequestId::given(&value), None, "{bad:?}");
            }
        }
        assert!(RequestId::fresh().to_string().starts_with("req_"));
    }
}
