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
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::invalid_request(None, format!("the body is not valid JSON: {e}"))
        })?;
        if !value.is_object() {
            return Err(ApiError::invalid_request(
                None,
                format!("the body must be a JSON object, not {}", kind(&value)),
            ));
        }
        integral_numbers(&mut value);
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

/// What kind of JSON value `value` is, for a message.
fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Numbers written with a zero fraction (`5.0`) as the integers they are: JSON has
/// one number type, and JSON Schema's `integer` admits them.
fn integral_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
            {
                if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    // In range and integral: the cast is exact.
                    *value = serde_json::Value::from(f as u64);
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                    *value = serde_json::Value::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// An optional field holding an object: `null` or absent is `None`, and anything but
/// an object (an array a struct would otherwise be read from) is refused.
pub(super) fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value @ serde_json::Value::Object(_)) => serde_json::from_value(value)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected an object, not {}",
            kind(&other)
        ))),
    }
}

/// [`object`] for a field that may also be absent (`None`), as [`present`] reads it.
pub(super) fn present_object<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    object(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_become_integers_and_fractions_stay() {
        let mut value = serde_json::json!({"a": 5.0, "b": [1.5, -2.0], "c": 1e30});
        integral_numbers(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": 5, "b": [1.5, -2], "c": 1e30})
        );
    }
}
