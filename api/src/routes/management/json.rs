//! JSON bodies and query values with errors that name the field.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// Like `axum::Json`, but a bad body answers 400/422 naming the field.
pub(super) struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| {
                let message = format!("cannot read the body: {}", e.body_text());
                crate::routes::slow_body::unreadable(&e, e.status(), message)
            })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::invalid_request(None, format!("the body is not valid JSON: {e}"))
        })?;
        let mut track = serde_path_to_error::Track::new();
        T::deserialize(serde_path_to_error::Deserializer::new(&value, &mut track))
            .map(Body)
            .map_err(|e| {
                let path = track.path().to_string();
                let param = (path != ".").then_some(path.as_str());
                ApiError::unprocessable(
                    param,
                    format!("{}: {e}", if path == "." { "body" } else { &path }),
                )
            })
    }
}

/// Like `axum::extract::Query`, but a bad query string answers 400 JSON naming the
/// problem (axum's own rejection is plain text).
pub(super) struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|query| Params(query.0))
            .map_err(|rejection| ApiError::invalid_request(None, rejection.body_text()))
    }
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub(super) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
