//! `agents`: what an agent runs with unless a session says otherwise.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `agents` area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AgentsConfig {
    pub defaults: AgentDefaults,
}

/// `agents.defaults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AgentDefaults {
    /// Model id, e.g. `gpt-4o-mini`, `anthropic/claude-sonnet-4-5`. Default `gpt-4o-mini`.
    pub model: String,
    /// Provider name to use; when absent it is resolved from the model (prefix, then
    /// the one provider with a key).
    pub provider: Option<String>,
    /// The agent's workspace directory. Default `<data dir>/workspace`.
    pub workspace: Option<PathBuf>,
    /// Most model calls (tool iterations) in one turn. Default 50.
    pub max_tool_iterations: u32,
    /// Most tokens the model may produce per call. Default 4096.
    pub max_tokens: u32,
    /// Sampling temperature. Default 0.1.
    pub temperature: f32,
    /// Tokens of context the model accepts; history is trimmed to fit. Default 128000.
    pub context_window_tokens: u32,
    /// Seconds a provider call may take (per chunk when streaming). Default 120.
    pub request_timeout_s: u64,
    /// Retries of a failed provider call (429, 5xx, connection). Default 3.
    pub max_retries: u32,
    /// Seconds a session stays in memory without activity. Default 600.
    pub idle_passivate_s: u64,
}

impl Default for AgentDefaults {
    fn default() -> Self {
        Self {
            model: "gpt-4o-mini".to_owned(),
            provider: None,
            workspace: None,
            max_tool_iterations: 50,
            max_tokens: 4096,
            temperature: 0.1,
            context_window_tokens: 128_000,
            request_timeout_s: 120,
            max_retries: 3,
            idle_passivate_s: 600,
        }
    }
}
