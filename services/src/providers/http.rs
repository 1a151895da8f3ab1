//! HTTP plumbing both provider clients share: building the client from config, sending
//! under a time limit, and turning failed responses into [`ProviderError`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use super::retry::parse_retry_after;
use super::{ProviderError, ResolveError};

/// Longest provider error body quoted back in an error message.
const QUOTED_BODY_CHARS: usize = 500;

/// Validates the configured (or default) base URL and returns it without a trailing `/`.
pub(crate) fn base_url(
    name: &str,
    configured: Option<&str>,
    default: &str,
) -> Result<String, ResolveError> {
    let base = configured
        .map(str::trim)
        .filter(|base| !base.is_empty())
        .unwrap_or(default);
    if base.is_empty() {
        return Err(invalid(
            name,
            format!(
                "providers.{name}.apiBase is required: there is no default base URL for {name:?}"
            ),
        ));
    }
    let url = Url::parse(base).map_err(|e| {
        invalid(
            name,
            format!("providers.{name}.apiBase {base:?} is not a URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            name,
            format!("providers.{name}.apiBase {base:?} must start with http:// or https://"),
        ));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

/// The API key, unless it is missing or blank (an unset `${ENV_VAR}` interpolates to "").
pub(crate) fn api_key(configured: Option<&str>) -> Option<&str> {
    configured.map(str::trim).filter(|key| !key.is_empty())
}

/// Builds a client that sends `auth` (marked sensitive so it never shows in debug
/// output) and the configured extra headers with every request.
pub(crate) fn client(
    name: &str,
    auth: Option<(HeaderName, String)>,
    fixed: &[(&'static str, &'static str)],
    extra: &BTreeMap<String, String>,
) -> Result<reqwest::Client, ResolveError> {
    let mut headers = HeaderMap::new();
    for (key, value) in fixed {
        headers.insert(
            HeaderName::from_static(key),
            HeaderValue::from_static(value),
        );
    }
    if let Some((header, secret)) = auth {
        let mut value = HeaderValue::from_str(&secret).map_err(|_| {
            invalid(
                name,
                format!(
                    "providers.{name}.apiKey contains characters not allowed in an HTTP header"
                ),
            )
        })?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    for (key, value) in extra {
        let header = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
            invalid(
                name,
                format!("providers.{name}.extraHeaders: {key:?} is not a valid header name"),
            )
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            invalid(
                name,
                format!(
                    "providers.{name}.extraHeaders.{key}: the value is not a valid header value"
                ),
            )
        })?;
        headers.insert(header, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(|e| invalid(name, format!("the HTTP client could not be built: {e}")))
}

fn invalid(name: &str, reason: String) -> ResolveError {
    ResolveError::Invalid {
        name: name.to_owned(),
        reason,
    }
}

/// Sends `request` and returns the response once its headers arrived with a 2xx status;
/// any other status becomes [`ProviderError::Http`]. The caller bounds the time.
pub(crate) async fn send(request: RequestBuilder) -> Result<Response, ProviderError> {
    // The provider sees the trace the call belongs to (W3C `traceparent`).
    let response = request
        .headers(crate::telemetry::trace_headers())
        .send()
        .await
        .map_err(transport_error)?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(http_error(response).await)
    }
}

/// Runs `work` within `limit`, failing with [`ProviderError::Timeout`] when it overruns.
pub(crate) async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| ProviderError::Timeout(limit))?
}

/// Reads a whole JSON response body.
pub(crate) async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, ProviderError> {
    let body = response.bytes().await.map_err(transport_error)?;
    parse_json(&body)
}

/// Decodes a JSON document from the provider, quoting the start of it when it is unreadable.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::InvalidResponse(format!("{e} in {}", quote(&String::from_utf8_lossy(body))))
    })
}

fn transport_error(error: reqwest::Error) -> ProviderError {
    if error.is_timeout() {
        // Only reqwest-level timeouts land here; our own limits are applied by `within`.
        ProviderError::Connection(format!("the connection timed out: {error}"))
    } else if error.is_decode() {
        ProviderError::InvalidResponse(error.to_string())
    } else {
        ProviderError::Connection(full_chain(&error))
    }
}

/// reqwest's top-level message is often just "error sending request"; the cause says why.
fn full_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn http_error(response: Response) -> ProviderError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = response.bytes().await.unwrap_or_default();
    let message = error_message(&body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body);
        if text.trim().is_empty() {
            "no error details given".to_owned()
        } else {
            quote(&text)
        }
    });
    ProviderError::Http {
        status,
        message,
        retry_after,
    }
}

/// The wait a provider asked for: `retry-after-ms` (OpenAI) or standard `Retry-After`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let millis = headers
        .get("retry-after-ms")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|millis| millis.is_finite() && *millis >= 0.0)
        .map(|millis| Duration::from_secs_f64(millis / 1000.0));
    millis.or_else(|| {
        headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, chrono::Utc::now()))
    })
}

/// `error.message` (OpenAI, Anthropic, most compatible servers), `error` as a string,
/// or a top-level `message`.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error");
    error
        .and_then(|error| error.get("message"))
        .or_else(|| error.filter(|error| error.is_string()))
        .or_else(|| value.get("message"))
        .and_then(|message| message.as_str())
        .map(str::to_owned)
}

fn quote(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(QUOTED_BODY_CHARS) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}
