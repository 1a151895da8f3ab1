//! A client for the OpenAI chat-completions API and the many servers that speak it
//! (OpenRouter, DeepSeek, Groq, vLLM, Ollama, ...).

use async_trait::async_trait;
use reqwest::header::AUTHORIZATION;
use tokio::sync::mpsc;

use super::openai_wire::{Chunk, Completion, StreamAssembly, request_body};
use super::retry::{AttemptError, DeltaForwarder, with_retries};
use super::sse::SseStream;
use super::{
    CallLimits, ChatRequest, ChatResponse, Provider, ProviderError, ResolveError, StreamDelta, http,
};
use crate::config::ProviderConfig;

/// OpenAI-compatible chat completions client.
pub struct OpenAiProvider {
    name: String,
    endpoint: String,
    client: reqwest::Client,
    limits: CallLimits,
}

impl std::fmt::Debug for OpenAiProvider {
    // Hand-written so the client's default headers (the API key) never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl OpenAiProvider {
    /// A client for provider `name`, talking to `cfg.api_base` or else `default_base`
    /// (empty when the provider has no well-known address). Without an API key no
    /// `Authorization` header is sent, as local servers expect.
    pub fn new(
        name: &str,
        cfg: &ProviderConfig,
        default_base: &str,
        limits: CallLimits,
    ) -> Result<Self, ResolveError> {
        let base = http::base_url(name, cfg.api_base.as_deref(), default_base)?;
        let auth = http::api_key(cfg.api_key.as_deref())
            .map(|key| (AUTHORIZATION, format!("Bearer {key}")));
        let client = http::client(name, auth, &[], &cfg.extra_headers)?;
        Ok(Self {
            name: name.to_owned(),
            endpoint: format!("{base}/chat/completions"),
            client,
            limits,
        })
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, AttemptError> {
        let call = self
            .client
            .post(&self.endpoint)
            .json(&request_body(request, false));
        let completion: Completion = http::within(self.limits.timeout, async {
            let response = http::send(call).await?;
            http::read_json(response).await
        })
        .await?;
        Ok(completion.into_response(&request.model)?)
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
        let mut completed = false;
        loop {
            let event = match events.next_event().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(error) => return Err(output.fail(error)),
            };
            let data = event.data.trim();
            if data == "[DONE]" {
                completed = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let text = http::parse_json::<Chunk>(data.as_bytes())
                .and_then(|chunk| assembly.apply(chunk))
                .map_err(|error| output.fail(error))?;
            if let Some(text) = text {
                output.forward(text).await;
            }
        }
        assembly
            .finish(completed, &request.model)
            .map_err(|error| output.fail(error))
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
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
