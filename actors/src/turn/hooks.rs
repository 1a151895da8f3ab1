//! Hooks an embedding host may register to observe a turn and veto tool calls.

use async_trait::async_trait;
use facio_services::domain::ToolCall;
use facio_services::providers::{ChatRequest, ChatResponse};

use super::events::ToolUse;

/// A host's verdict on a tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookDecision {
    Allow,
    /// The call does not run; the model is told why.
    Veto(String),
}

/// Lifecycle hooks for one run. Every method has a no-op default.
#[async_trait]
pub trait TurnHooks: Send + Sync {
    async fn before_model_call(&self, _request: &ChatRequest) {}
    async fn after_model_call(&self, _response: &ChatResponse) {}
    async fn before_tool_call(&self, _call: &ToolCall) -> HookDecision {
        HookDecision::Allow
    }
    async fn after_tool_call(&self, _call: &ToolCall, _result: &ToolUse) {}
}
