//! The embedding SDK: run the Facio agent loop inside your own process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), facio::FacioError> {
//! let bot = facio::Facio::from_config("./config.json", "./workspace").await?;
//! let result = bot.run("Summarize the current workspace.", facio::RunOptions::session("sdk:summary")?).await?;
//! println!("{}", result.content);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use facio_actors::{
    HookDecision, Origin, RuntimeError, StopReason, ToolUse, TurnHooks, TurnRequest,
};
use facio_services::config::Config;
use facio_services::domain::{ChatMessage, IdError, RunId, SessionKey, TenantId, ToolCall, Usage};
use facio_services::providers::{ChatRequest, ChatResponse};

use crate::bootstrap::{BootError, Node, NodeOptions};

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum FacioError {
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("invalid session key: {0}")]
    SessionKey(#[from] IdError),
    #[error("run {run_id} did not finish: {reason:?}")]
    TurnFailed { run_id: RunId, reason: StopReason },
}

/// Options for one [`Facio::run`].
#[derive(Clone)]
pub struct RunOptions {
    /// Different keys keep separate histories. Default `sdk:default`.
    pub session_key: SessionKey,
    /// Observe model and tool calls; any hook may veto a tool call.
    pub hooks: Vec<Arc<dyn TurnHooks>>,
}

impl RunOptions {
    /// Options for the session `key`, with no hooks.
    pub fn session(key: &str) -> Result<Self, FacioError> {
        Ok(Self {
            session_key: SessionKey::new(key)?,
            hooks: Vec::new(),
        })
    }

    pub fn with_hook(mut self, hook: Arc<dyn TurnHooks>) -> Self {
        self.hooks.push(hook);
        self
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            session_key: SessionKey::new("sdk:default")
                .unwrap_or_else(|_| unreachable!("a constant valid key")),
            hooks: Vec::new(),
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub run_id: RunId,
    /// The assistant's final text.
    pub content: String,
    /// Every tool call of the run, in order, with what the model received.
    pub tools_used: Vec<ToolUse>,
    /// Every message the run added to the session (user input, assistant replies,
    /// tool results).
    pub messages: Vec<ChatMessage>,
    pub usage: Usage,
    /// Whether the run stopped at the iteration budget (`content` says so).
    pub budget_exhausted: bool,
}

/// An embedded Facio runtime.
pub struct Facio {
    node: Node,
}

impl Facio {
    /// Loads `config_path` (environment variables resolved, `FACIO_` overrides
    /// applied), uses `workspace` as the agent's workspace, and checks that the
    /// configured model has a usable provider.
    pub async fn from_config(
        config_path: impl AsRef<Path>,
        workspace: impl AsRef<Path>,
    ) -> Result<Self, FacioError> {
        let node = Node::start(NodeOptions {
            config_path: Some(config_path.as_ref().to_path_buf()),
            workspace: Some(workspace.as_ref().to_path_buf()),
            recover: false,
            require_provider: true,
        })
        .await?;
        Ok(Self { node })
    }

    /// Like [`Facio::from_config`] with an already loaded configuration.
    pub async fn with_config(config: Config) -> Result<Self, FacioError> {
        let node = Node::start_with_config(config, false, true).await?;
        Ok(Self { node })
    }

    /// Processes one message through the agent loop.
    pub async fn run(&self, message: &str, options: RunOptions) -> Result<RunResult, FacioError> {
        let hooks: Option<Arc<dyn TurnHooks>> = match options.hooks.len() {
            0 => None,
            1 => options.hooks.into_iter().next(),
            _ => Some(Arc::new(HookChain(options.hooks))),
        };
        let summary = self
            .node
            .runtime
            .run(TurnRequest {
                tenant: TenantId::default_tenant(),
                session_key: options.session_key,
                input: message.to_owned(),
                origin: Origin::Sdk,
                hooks,
                model: None,
            })
            .await?;
        match summary.stop {
            StopReason::Answered
            | StopReason::BudgetExhausted { .. }
            | StopReason::TokenBudgetExhausted { .. } => Ok(RunResult {
                run_id: summary.run_id,
                content: summary.content.unwrap_or_default(),
                tools_used: summary.tools_used,
                messages: summary.messages,
                usage: summary.usage,
                budget_exhausted: matches!(
                    summary.stop,
                    StopReason::BudgetExhausted { .. } | StopReason::TokenBudgetExhausted { .. }
                ),
            }),
            reason => Err(FacioError::TurnFailed {
                run_id: summary.run_id,
                reason,
            }),
        }
    }

    /// Stops the runtime, letting a running turn finish for up to `grace`.
    pub async fn shutdown(self, grace: Duration) {
        self.node.runtime.shutdown(grace).await;
    }
}

/// Several hooks as one: each observes; the first veto wins.
struct HookChain(Vec<Arc<dyn TurnHooks>>);

#[async_trait]
impl TurnHooks for HookChain {
    async fn before_model_call(&self, request: &ChatRequest) {
        for hook in &self.0 {
            hook.before_model_call(request).await;
        }
    }

    async fn after_model_call(&self, response: &ChatResponse) {
        for hook in &self.0 {
            hook.after_model_call(response).await;
        }
    }

    async fn before_tool_call(&self, call: &ToolCall) -> HookDecision {
        for hook in &self.0 {
            if let HookDecision::Veto(reason) = hook.before_tool_call(call).await {
                return HookDecision::Veto(reason);
            }
        }
        HookDecision::Allow
    }

    async fn after_tool_call(&self, call: &ToolCall, result: &ToolUse) {
        for hook in &self.0 {
            hook.after_tool_call(call, result).await;
        }
    }
}
