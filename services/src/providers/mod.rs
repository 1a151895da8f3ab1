//! Model providers: one trait, an OpenAI-compatible client and a native Anthropic
//! client, with retries and timeouts shared by both, and model → provider resolution.

mod anthropic;
mod anthropic_stream;
mod anthropic_wire;
mod error;
mod http;
mod openai;
mod openai_wire;
mod resolve;
mod retry;
mod sse;
#[cfg(test)]
mod tests;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::domain::{ChatMessage, ToolCall, Usage};
use crate::tools::ToolSpecs;

pub use anthropic::AnthropicProvider;
pub use error::ProviderError;
pub use openai::OpenAiProvider;
pub use resolve::{ProviderRegistry, ResolveError};
pub use retry::RetryPolicy;

/// What the runtime asks a model.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// Shared and built once (see [`ToolSpecs`]).
    pub tools: ToolSpecs,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    ToolCalls,
    Length,
    ContentFilter,
}

impl FinishReason {
    /// The reason as the OpenAI wire (and `gen_ai.response.finish_reasons`) spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::ToolCalls => "tool_calls",
            Self::Length => "length",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// The model's complete answer to one request (assembled from the stream when streamed).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    /// The model id the provider reported.
    pub model: String,
}

/// A piece of a streamed answer, forwarded to whoever watches the turn.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamDelta {
    /// Assistant text as it arrives.
    Text(String),
}

/// A model backend. Implementations own their timeouts and retries: a call either
/// returns within its configured limits or fails with a [`ProviderError`].
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The configured name (`openai`, `anthropic`, `vllm`, ...).
    fn name(&self) -> &str;

    /// Sends `request`. When `deltas` is given the call streams and forwards text
    /// deltas as they arrive; either way the assembled response is returned. Retries
    /// happen only before the first delta was forwarded, so a watcher never sees
    /// text twice.
    async fn chat(
        &self,
        request: &ChatRequest,
        deltas: Option<mpsc::Sender<StreamDelta>>,
    ) -> Result<ChatResponse, ProviderError>;
}

/// Limits every provider call honours.
#[derive(Debug, Clone)]
pub struct CallLimits {
    /// Whole-request limit for a non-streamed call; for a streamed call, the limit
    /// until the first byte and between two chunks.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}
