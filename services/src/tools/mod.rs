//! Tools the model may call. One tool per file, each declaring its spec (name,
//! description, JSON schema, risk tier) beside its `execute`; the registry composes them.

mod control_files;
mod edit_file;
mod error;
mod exec;
#[cfg(test)]
mod file_tests;
mod glob;
mod grep;
mod list_dir;
mod patch_file;
mod read_file;
mod read_logs;
mod registry;
mod specs;
mod text_file;
mod web_fetch;
mod workspace;
mod write_file;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::ToolsConfig;

pub use control_files::{command_writes_control_files, execution_control_writes, files_run_by};
pub use error::{ToolError, ToolErrorKind};
pub use exec::{NamespaceMode, SandboxError, SandboxStatus, require_sandbox, sandbox_status};
pub use read_logs::RecordSource;
pub use registry::ToolRegistry;
pub use specs::ToolSpecs;
pub use text_file::atomic_write;
pub use workspace::{Workspace, WorkspaceError};

/// How much a tool can affect the world; the policy decides by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskTier {
    /// Reads only (read_file, list_dir, glob, grep). Safe to run in parallel.
    ReadOnly,
    /// Changes files inside the workspace.
    WorkspaceWrite,
    /// Affects the world outside the workspace (exec, web_fetch, message).
    SystemEffect,
    /// Changes the runtime's own infrastructure (MCP servers, credentials, models).
    Infrastructure,
}

impl RiskTier {
    /// The tier's name as config and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read-only",
            Self::WorkspaceWrite => "workspace-write",
            Self::SystemEffect => "system-effect",
            Self::Infrastructure => "infrastructure",
        }
    }
}

/// What a model is told about a tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: serde_json::Value,
    pub risk: RiskTier,
}

/// What a tool call runs with.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workspace: Workspace,
    pub config: Arc<ToolsConfig>,
    /// Cancelled when the turn is cancelled or the node shuts down.
    pub cancel: CancellationToken,
    /// The tenant's credentials, for `${credentials.KEY}` placeholders and exposed
    /// environment variables.
    pub secrets: Arc<crate::vault::Secrets>,
    /// What the runtime decided about this very call beyond letting it run.
    pub grant: CallGrant,
    /// The calling tenant's audit events and log records, for `read_logs`.
    pub records: Option<Arc<dyn RecordSource>>,
}

/// What the runtime granted one call, decided before it runs (never by the model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallGrant {
    /// A human approved this exact call (tool name and arguments as the review showed).
    pub human_approved: bool,
    /// The call may reach the network: a human approved it, or an allow rule that
    /// grants network covers it. Without it `exec` runs with no network.
    pub network: bool,
    /// An allow rule, not a human and not gates switched off, let the call run:
    /// `exec` then gets no unscoped exposed credential and cannot see the files that
    /// hold credentials.
    pub by_rule: bool,
}

/// A successful tool result: text for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub content: String,
}

impl ToolOutput {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
        }
    }
}

/// A tool the model may call.
#[async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> ToolSpec;

    /// Runs the tool. Errors are results for the model, not failures of the turn.
    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}

/// Parses a tool's arguments into its typed form, naming the problem on failure.
pub fn parse_args<T: for<'de> Deserialize<'de>>(args: serde_json::Value) -> Result<T, ToolError> {
    serde_json::from_value(args).map_err(|e| {
        ToolError::new(ToolErrorKind::InvalidArguments, e.to_string())
            .with_hint("check the tool's JSON schema for the expected fields and types")
    })
}
