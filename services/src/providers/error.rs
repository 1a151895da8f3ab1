//! Provider failures.

use std::time::Duration;

/// Why a model call failed (after retries).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("model request timed out after {0:?}")]
    Timeout(Duration),
    #[error("could not reach the model provider: {0}")]
    Connection(String),
    #[error("model provider returned HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        /// Seconds the provider asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    #[error("model provider sent a response we cannot read: {0}")]
    InvalidResponse(String),
    #[error("the model call was cancelled")]
    Cancelled,
}

impl ProviderError {
    /// A low-cardinality name of the failure, for `error.type` on spans and metrics
    /// (never the message, which may quote the provider).
    pub fn kind(&self) -> String {
        match self {
            Self::Timeout(_) => "timeout".to_owned(),
            Self::Connection(_) => "connection".to_owned(),
            Self::Http { status, .. } => status.to_string(),
            Self::InvalidResponse(_) => "invalid_response".to_owned(),
            Self::Cancelled => "cancelled".to_owned(),
        }
    }

    /// Whether another attempt may succeed (429, 5xx, timeouts, connection errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Connection(_) => true,
            Self::Http { status, .. } => *status == 429 || *status >= 500,
            Self::InvalidResponse(_) | Self::Cancelled => false,
        }
    }
}
