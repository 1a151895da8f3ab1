//! `tools.mcpServers.<name>`: an MCP server whose tools the model is offered as
//! `mcp_<name>_<tool>`. The same shape is what `/api/v1/mcp` stores per tenant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tools::RiskTier;

/// Most characters of a server's name.
pub const MCP_SERVER_NAME_MAX: usize = 32;

/// How the node reaches an MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum McpTransport {
    /// A child process speaking MCP over its stdin and stdout.
    #[serde(rename = "stdio")]
    Stdio,
    /// MCP's streamable HTTP transport (one endpoint, POSTs, optional SSE).
    #[serde(rename = "streamableHttp")]
    StreamableHttp,
}

impl McpTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::StreamableHttp => "streamableHttp",
        }
    }
}

/// One MCP server. `env` values and `headers` values may hold `${credentials.KEY}`,
/// resolved from the tenant's credentials when the node connects (and hidden from
/// what the server's tools return).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpServerConfig {
    #[serde(rename = "type")]
    pub transport: McpTransport,
    /// `stdio`: the program to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `stdio`: its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// `stdio`: environment variables set for it (on top of the node's own).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `streamableHttp`: the endpoint (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `streamableHttp`: headers sent with every request (e.g. `Authorization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Seconds one tool call may take (default: `tools.timeoutS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_timeout_s: Option<u64>,
    /// The server's tools offered to the model, by their own names (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_tools: Option<Vec<String>>,
    /// The risk tier of every tool of this server (default `system-effect`: each call
    /// waits for a human unless a policy rule allows it).
    #[serde(default = "default_tier")]
    #[schema(value_type = String, example = "system-effect")]
    pub risk_tier: RiskTier,
    /// Whether the node connects to it (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_tier() -> RiskTier {
    RiskTier::SystemEffect
}

fn yes() -> bool {
    true
}

impl McpServerConfig {
    /// What is wrong with this definition, as `(field, problem)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        match self.transport {
            McpTransport::Stdio => {
                if self.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Some(("command", "a stdio server needs a command".into()));
                }
                if self.command.as_deref().is_some_and(|c| c.contains('\0'))
                    || self.args.iter().any(|a| a.contains('\0'))
                {
                    return Some(("command", "command and args must not hold NUL".into()));
                }
                for (name, value) in &self.env {
                    let mut chars = name.chars();
                    let first = chars
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                    if !first || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Some((
                            "env",
                            format!("{name:?} is not an environment variable name"),
                        ));
                    }
                    if value.contains(['\0', '\r', '\n']) {
                        return Some((
                            "env",
                            format!("{name}'s value holds a NUL or a line break"),
                        ));
                    }
                }
                if self.url.is_some() || !self.headers.is_empty() {
                    return Some((
                        "url",
                        "url and headers are for streamableHttp servers".into(),
                    ));
                }
            }
            McpTransport::StreamableHttp => {
                let Some(url) = self.url.as_deref() else {
                    return Some(("url", "a streamableHttp server needs a url".into()));
                };
                match reqwest::Url::parse(url) {
                    Ok(_) if url.chars().any(char::is_whitespace) => {
                        return Some(("url", "must not hold spaces".into()));
                    }
                    Ok(parsed)
                        if matches!(parsed.scheme(), "http" | "https")
                            && parsed.host_str().is_some_and(|h| !h.is_empty()) => {}
                    Ok(_) => return Some(("url", "must be an http or https URL".into())),
                    Err(e) => return Some(("url", format!("must be a URL: {e}"))),
                }
                if self.command.is_some() || !self.args.is_empty() || !self.env.is_empty() {
                    return Some((
                        "command",
                        "command, args and env are for stdio servers".into(),
                    ));
                }
                for (name, value) in &self.headers {
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Some(("headers", format!("{name:?} is not a header name")));
                    }
                    if reqwest::header::HeaderValue::from_str(value).is_err() {
                        return Some((
                            "headers",
                            format!("{name}'s value is not valid in a header"),
                        ));
                    }
                }
            }
        }
        if self.tool_timeout_s == Some(0) {
            return Some(("toolTimeoutS", "must be at least 1".into()));
        }
        if let Some(tools) = &self.enabled_tools
            && tools.iter().any(|t| t.trim().is_empty())
        {
            return Some(("enabledTools", "names must not be empty".into()));
        }
        None
    }

    /// Whether the model is offered the server's tool `name`.
    pub fn offers(&self, name: &str) -> bool {
        self.enabled_tools
            .as_ref()
            .is_none_or(|tools| tools.iter().any(|t| t == name || t == "*"))
    }
}

/// What is wrong with a server's name: letters, digits and `-`, at most
/// [`MCP_SERVER_NAME_MAX`] characters (no `_`, so `mcp_<server>_<tool>` reads back
/// unambiguously).
pub fn mcp_server_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a server name must not be empty".into());
    }
    if name.len() > MCP_SERVER_NAME_MAX {
        return Some(format!(
            "a server name has at most {MCP_SERVER_NAME_MAX} characters"
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Some(format!(
            "{name:?} may hold only letters, digits and '-' (the model sees its tools as \
             mcp_<server>_<tool>)"
        ));
    }
    None
}
