//! A client for Anthropic's native Messages API.

use async_trait::async_trait;
use reqwest::header::HeaderName;
use tokio::sync::mpsc;

use super::anthropic_stream::{Event, StreamAssembly};
use super::anthropic_wire::{Message, request_body};
use super::retry::{AttemptError, DeltaForwarder, with_retries};
use super::sse::SseStream;
use super::{
    CallLimits, ChatRequest, ChatResponse, Provider, ProviderError, ResolveError, StreamDelta, http,
};
use crate::config::ProviderConfig;

/// Where the Messages API lives unless `apiBase` says otherwise.
pub(crate) const DEFAULT_BASE: &str = "https://api.anthropic.com";

/// The API version this client speaks.
const API_VERSION: &str = "2023-06-01";

/// Anthropic Messages client.
pub struct AnthropicProvider {
    name: String,
    endpoint: String,
    client: reqwest::Client,
    limits: CallLimits,
}

impl std::fmt::Debug for AnthropicProvider {
    // Hand-written so the client's default headers (the API key) never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AnthropicProvider {
    /// A client for provider `name`, talking to `cfg.api_base` or else
    /// `https://api.anthropic.com`.
    pub fn new(name: &str, cfg: &ProviderConfig, limits: CallLimits) -> Result<Self, ResolveError> {
        let base = http::base_url(name, cfg.api_base.as_deref(), DEFAULT_BASE)?;
        let auth = http::api_key(cfg.api_key.as_deref())
            .map(|key| (HeaderName::from_static("x-api-key"), key.to_owned()));
        let client = http::client(
            name,
            auth,
            &[("anthropic-version", API_VERSION)],
            &cfg.extra_headers,
        )?;
        Ok(Self {
            name: name.to_owned(),
            endpoint: format!("{base}/v1/messages"),
            client,
            limits,
        })
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, AttemptError> {
        let call = self
            .client
            .post(&self.endpoint)
            .json(&request_body(request, false));
        let message: Message = http::within(self.limits.timeout, async {
            let response = http::send(call).await?;
            http::read_json(response).await
        })
        .await?;
        Ok(message.into_response(&request.model))
    }

    async fn stream(
        &self,
        request: &ChatRequest,
        deltas: &mpsc::Sender<StreamDelta>,
    ) -> Result<ChatResponse, AttemptError> {
        let call = self
            .client
            .post(&self.endpoint)
            .json(&request_body(request, true));
        let response = http::within(self.limits.timeout, http::send(call)).await?;
        let mut events = SseStream::new(Box::pin(response.bytes_stream()), self.limits.timeout);
        let mut assembly = StreamAssembly::default();
        let mut output = DeltaForwarder::new(deltas);
        while !assembly.is_stopped() {
            let event = match events.next_event().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(error) => return Err(output.fail(error)),
            };
            if event.data.trim().is_empty() {
                continue;
            }
            let text = http::parse_json::<Event>(event.data.as_bytes())
                .and_then(|event| assembly.apply(event))
                .map_err(|error| output.fail(error))?;
            if let Some(text) = text {
                output.forward(text).await;
            }
        }
        assembly
            .finish(&request.model)
            .map_err(|error| output.fail(error))
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        deltas: Option<mpsc::Sender<StreamDelta>>,
    ) -> Result<ChatResponse, ProviderError> {
        with_retries(&self.limits.retry, &self.name, || async {
            match &deltas {
                Some(deltas) => self.stream(request, deltas).await,
                None => self.complete(request).await,
            }
        })
        .await
    }
}
