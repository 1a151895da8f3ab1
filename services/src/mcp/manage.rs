//! `manage_mcp`: the agent adds, removes, enables, disables and restarts its tenant's
//! MCP servers. Infrastructure tier, and the runtime asks a human for every call
//! whatever the policy says; the agent may add only `streamableHttp` servers.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{McpActor, McpError, McpHub};
use crate::config::McpServerConfig;
use crate::domain::TenantId;
use crate::tools::{RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec};

pub const MANAGE_MCP: &str = "manage_mcp";

/// The tool's spec (the same for every tenant).
pub fn manage_mcp_spec() -> ToolSpec {
    ToolSpec {
        name: MANAGE_MCP.to_owned(),
        description: "Add, remove, enable, disable or restart one of this workspace's MCP \
                      servers (a human approves every call). `add` takes a streamableHttp \
                      server: {\"type\": \"streamableHttp\", \"url\": ..., \"headers\": {...}}; \
                      header values may use ${credentials.KEY}. Its tools then appear as \
                      mcp_<name>_<tool>."
            .to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {
                "action": {
                    "type": "string",
                    "enum": ["add", "remove", "enable", "disable", "restart"],
                },
                "name": {
                    "type": "string",
                    "description": "the server's name: letters, digits and '-'",
                },
                "server": {
                    "type": "object",
                    "description": "for add: the server's definition",
                    "properties": {
                        "type": {"type": "string", "enum": ["streamableHttp"]},
                        "url": {"type": "string"},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                        "toolTimeoutS": {"type": "integer", "minimum": 1},
                        "enabledTools": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["type", "url"],
                },
            },
            "required": ["action", "name"],
        }),
        risk: RiskTier::Infrastructure,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    action: Action,
    name: String,
    #[serde(default)]
    server: Option<McpServerConfig>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Action {
    Add,
    Remove,
    Enable,
    Disable,
    Restart,
}

pub(super) struct ManageMcp {
    hub: Arc<McpHub>,
    tenant: TenantId,
}

impl ManageMcp {
    pub fn new(hub: Arc<McpHub>, tenant: TenantId) -> Self {
        Self { hub, tenant }
    }
}

#[async_trait]
impl Tool for ManageMcp {
    fn spec(&self) -> ToolSpec {
        manage_mcp_spec()
    }

    async fn execute(
        &self,
        _ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: Args = crate::tools::parse_args(args)?;
        let actor = McpActor {
            name: "agent".to_owned(),
            operator: false,
            run: None,
            context: serde_json::Map::from_iter([("surface".to_owned(), json!("manage_mcp"))]),
        };
        let (hub, tenant, name) = (&self.hub, &self.tenant, args.name.as_str());
        let done = match args.action {
            Action::Add => {
                let Some(mut def) = args.server else {
                    return Err(ToolError::new(
                        ToolErrorKind::InvalidArguments,
                        "add needs the server's definition in `server`",
                    ));
                };
                // What the agent adds is always gated.
                def.risk_tier = def.risk_tier.max(RiskTier::SystemEffect);
                hub.put(tenant, name, def, false, &actor).await.map(shown)
            }
            Action::Remove => hub
                .remove(tenant, name, &actor)
                .await
                .map(|()| json!({"removed": name})),
            Action::Enable => hub.set_enabled(tenant, name, true, &actor).await.map(shown),
            Action::Disable => hub
                .set_enabled(tenant, name, false, &actor)
                .await
                .map(shown),
            Action::Restart => hub.restart(tenant, name, &actor).await.map(shown),
        };
        match done {
            Ok(answer) => Ok(ToolOutput::text(answer.to_string())),
            Err(e) => {
                let kind = match e {
                    McpError::Invalid(_) => ToolErrorKind::InvalidArguments,
                    McpError::NotFound(_) => ToolErrorKind::NotFound,
                    McpError::Forbidden(_) => ToolErrorKind::Denied,
                    McpError::Conflict(_) | McpError::Store(_) => ToolErrorKind::Failed,
                };
                Err(ToolError::new(kind, e.to_string()))
            }
        }
    }
}

fn shown(view: super::McpServerView) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}
