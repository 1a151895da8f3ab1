//! An MCP server's tool as the model sees it: `mcp_<server>_<tool>`, the server's own
//! input schema, the server's risk tier. A call goes to the server's live connection;
//! a tool that fails (`isError`) and a server that cannot be reached both come back as
//! structured tool errors, never as a failed turn.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmcp::model::CallToolResult;

use super::server::{CallError, RemoteTool, Server};
use crate::tools::{Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec};

/// Longest a call waits for a server that is connecting.
const CONNECTING_WAIT: Duration = Duration::from_secs(10);
/// OpenAI's limit on a function name.
const NAME_MAX: usize = 64;

/// The name the model calls a server's tool by: `mcp_<server>_<tool>`, characters
/// other than letters, digits, `_` and `-` replaced by `_`, cut to 64.
pub fn model_name(server: &str, tool: &str) -> String {
    let name: String = format!("mcp_{server}_{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.chars().take(NAME_MAX).collect()
}

pub(super) struct McpTool {
    server: Arc<Server>,
    remote: String,
    spec: ToolSpec,
}

impl McpTool {
    pub fn new(server: Arc<Server>, tool: &RemoteTool) -> Self {
        let mut parameters = tool.schema.clone();
        // OpenAI wants an object schema with properties.
        if let Some(object) = parameters.as_object_mut() {
            object
                .entry("type")
                .or_insert_with(|| serde_json::json!("object"));
            object
                .entry("properties")
                .or_insert_with(|| serde_json::json!({}));
        } else {
            parameters = serde_json::json!({"type": "object", "properties": {}});
        }
        let description = if tool.description.is_empty() {
            format!("{} (MCP server {})", tool.name, server.name)
        } else {
            format!("{} (MCP server {})", tool.description, server.name)
        };
        let spec = ToolSpec {
            name: model_name(&server.name, &tool.name),
            description,
            parameters,
            risk: server.def.risk_tier,
        };
        Self {
            server,
            remote: tool.name.clone(),
            spec,
        }
    }
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let arguments = match args {
            serde_json::Value::Object(map) => map,
            _ => {
                return Err(ToolError::new(
                    ToolErrorKind::InvalidArguments,
                    "arguments must be a JSON object",
                ));
            }
        };
        let server = &self.server;
        let limit = Duration::from_secs(
            server
                .def
                .tool_timeout_s
                .unwrap_or(ctx.config.timeout_s)
                .max(1),
        );
        let call = server.call(&self.remote, arguments, CONNECTING_WAIT.min(limit));
        let result = tokio::select! {
            result = tokio::time::timeout(limit, call) => result,
            () = ctx.cancel.cancelled() => {
                return Err(ToolError::new(ToolErrorKind::Cancelled, "the tool call was cancelled"));
            }
        };
        let hide = |text: String| ctx.secrets.redact(&server.redact(text));
        match result {
            Err(_) => Err(ToolError::new(
                ToolErrorKind::Timeout,
                format!(
                    "the MCP server {} did not answer {} within {}s",
                    server.name,
                    self.remote,
                    limit.as_secs()
                ),
            )
            .with_hint("narrow the request, or try again later")),
            Ok(Err(CallError::Unavailable(why, retry_at))) => {
                let when = retry_at
                    .map(|at| {
                        let secs = (at - chrono::Utc::now()).num_seconds().max(0);
                        format!("; it tries again in {secs}s")
                    })
                    .unwrap_or_default();
                Err(ToolError::new(
                    ToolErrorKind::Unavailable,
                    hide(format!(
                        "the MCP server {} is not connected: {why}{when}",
                        server.name
                    )),
                )
                .with_hint("the call did not run; try it again later or do without it"))
            }
            Ok(Err(CallError::Lost(why))) => Err(ToolError::new(
                ToolErrorKind::Unavailable,
                hide(format!(
                    "the connection to the MCP server {} broke during the call ({why}); \
                     it reconnects",
                    server.name
                )),
            )
            .with_hint(
                "the call may or may not have run on the server; check before repeating it",
            )),
            Ok(Err(CallError::Protocol(message))) => Err(ToolError::new(
                ToolErrorKind::Failed,
                hide(format!(
                    "the MCP server {} refused the call: {message}",
                    server.name
                )),
            )),
            Ok(Ok(result)) => {
                let text = hide(render(&result));
                if result.is_error == Some(true) {
                    Err(ToolError::new(ToolErrorKind::Failed, text)
                        .with_hint("the tool ran and reported this error"))
                } else {
                    Ok(ToolOutput::text(text))
                }
            }
        }
    }
}

/// A result as text for the model: each content block in order (text as is, other
/// kinds described), then the structured content when no text carried it.
fn render(result: &CallToolResult) -> String {
    let mut parts = Vec::new();
    for block in &result.content {
        let Ok(value) = serde_json::to_value(block) else {
            continue;
        };
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default();
        match field("type") {
            "text" => parts.push(field("text").to_owned()),
            "image" | "audio" => parts.push(format!(
                "[{} {}, {} bytes base64]",
                field("type"),
                field("mimeType"),
                field("data").len()
            )),
            "resource" => {
                let resource = value.get("resource");
                let text = resource
                    .and_then(|r| r.get("text"))
                    .and_then(|t| t.as_str());
                let uri = resource
                    .and_then(|r| r.get("uri"))
                    .and_then(|u| u.as_str())
                    .unwrap_or_default();
                match text {
                    Some(text) => parts.push(format!("[resource {uri}]\n{text}")),
                    None => parts.push(format!("[resource {uri} (binary)]")),
                }
            }
            "resource_link" => parts.push(format!("[resource link {}]", field("uri"))),
            other => parts.push(format!("[{other} content]")),
        }
    }
    if let Some(structured) = &result.structured_content
        && parts.iter().all(|p| p.trim().is_empty())
    {
        parts.push(structured.to_string());
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_carry_the_server_and_fit_the_wire() {
        assert_eq!(
            model_name("everything", "get-sum"),
            "mcp_everything_get-sum"
        );
        assert_eq!(model_name("docs", "search.v2"), "mcp_docs_search_v2");
        assert_eq!(model_name("s", &"x".repeat(100)).len(), 64);
    }

    #[test]
    fn results_read_as_text_for_the_model() {
        let result: CallToolResult = serde_json::from_value(serde_json::json!({
            "content": [
                {"type": "text", "text": "Echo: hi"},
                {"type": "image", "mimeType": "image/png", "data": "AAAA"},
                {"type": "resource", "resource": {"uri": "file:///a", "text": "body"}},
            ],
        }))
        .unwrap();
        assert_eq!(
            render(&result),
            "Echo: hi\n[image image/png, 4 bytes base64]\n[resource file:///a]\nbody"
        );
        let structured: CallToolResult = serde_json::from_value(serde_json::json!({
            "content": [], "structuredContent": {"sum": 3},
        }))
        .unwrap();
        assert_eq!(render(&structured), r#"{"sum":3}"#);
    }
}
