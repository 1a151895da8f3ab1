//! `tools`: confinement and limits for the built-in tools.

use serde::{Deserialize, Serialize};

/// `tools` area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Confine file tools and `exec` to the workspace. Default true.
    pub restrict_to_workspace: bool,
    pub exec: ExecConfig,
    pub web: WebConfig,
    /// Seconds any tool call may take before it is stopped. Default 120.
    pub timeout_s: u64,
    /// MCP servers every tenant's turns may use (each tenant gets its own
    /// connection, with its own credentials); tenants add their own through
    /// `/api/v1/mcp`.
    pub mcp_servers: std::collections::BTreeMap<String, super::McpServerConfig>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            restrict_to_workspace: true,
            exec: ExecConfig::default(),
            web: WebConfig::default(),
            timeout_s: 120,
            mcp_servers: std::collections::BTreeMap::new(),
        }
    }
}

/// `tools.exec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ExecConfig {
    /// Seconds a command may run. Default 60.
    pub timeout_s: u64,
    /// Regexes; a command matching any is refused. Defaults cover destructive commands
    /// (`rm -rf /`, `mkfs`, `shutdown`, fork bombs, ...).
    pub deny_patterns: Vec<String>,
    /// Characters of output kept (head and tail). Default 10000.
    pub max_output_chars: usize,
    /// The OS sandbox commands run in. Default `auto`.
    pub sandbox: ExecSandbox,
    /// Files and directories sandboxed commands cannot see: a directory appears empty
    /// and read-only, a file empty (as `/dev/null`). Relative to the config file; `~/`
    /// is the home directory. For the node's own secrets, e.g. the master key, the
    /// store and `config.json`. Default none; ignored with the sandbox `off`.
    pub hide_paths: Vec<std::path::PathBuf>,
}

/// `tools.exec.sandbox`: whether commands run in the OS sandbox (Landlock keeps their
/// writes in the workspace and a private temp dir; pid, mount and, unless the call is
/// granted network, net namespaces end every process with its call and cut the network).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecSandbox {
    /// Sandboxed; on a machine that cannot sandbox, `exec` refuses every command and
    /// says what is missing. The node starts either way.
    #[default]
    Auto,
    /// As `auto`, and the node refuses to start where the sandbox is unavailable.
    On,
    /// No sandbox: commands run unconfined in their own process group, which is killed
    /// when the call ends. An explicit opt-out.
    Off,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            timeout_s: 60,
            deny_patterns: vec![
                r"\brm\s+-[a-zA-Z]*[rf][a-zA-Z]*\s+(/|~|\$HOME)(\s|$)".to_owned(),
                r"\bmkfs(\.\w+)?\b".to_owned(),
                r"\bdd\s+.*of=/dev/".to_owned(),
                r"\b(shutdown|reboot|halt|poweroff)\b".to_owned(),
                r":\(\)\s*\{\s*:\|:&\s*\};:".to_owned(),
                r">\s*/dev/sd[a-z]".to_owned(),
            ],
            max_output_chars: 10_000,
            sandbox: ExecSandbox::Auto,
            hide_paths: Vec::new(),
        }
    }
}

/// `tools.web`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WebConfig {
    /// Characters of fetched content kept. Default 50000.
    pub fetch_max_chars: usize,
    /// Hosts or IPs that `web_fetch` may reach even though they are private or
    /// loopback (e.g. `127.0.0.1`, `intranet.local`). Default none.
    pub allow_private_hosts: Vec<String>,
    /// Most redirects followed. Default 5.
    pub max_redirects: u32,
    /// Seconds a fetch may take. Default 30.
    pub timeout_s: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            fetch_max_chars: 50_000,
            allow_private_hosts: Vec::new(),
            max_redirects: 5,
            timeout_s: 30,
        }
    }
}
