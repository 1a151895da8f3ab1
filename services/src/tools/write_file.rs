//! `write_file`: create or replace a file, atomically.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::text_file::write_view;
use super::{RiskTier, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, parse_args};
use crate::vault::PlaceholderView;

pub struct WriteFileTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    content: String,
}

#[async_trait]
impl Tool for WriteFileTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "write_file".into(),
            description: "Create or overwrite a file in the workspace with the given content. \
                Parent directories are created. Prefer edit_file for small changes."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path relative to the workspace"},
                    "content": {"type": "string", "description": "The complete new content"}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
            risk: RiskTier::WorkspaceWrite,
        }
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: Args = parse_args(args)?;
        let real = ctx.workspace.resolve(&args.path)?;
        // `${credentials.KEY}` is written as the value: a config file the agent writes
        // for a program is where the credential is used (when its scope allows).
        let written = write_view(
            ctx,
            "write_file",
            &real,
            &args.path,
            &PlaceholderView::default(),
            &args.content,
        )
        .await?;
        Ok(ToolOutput::text(format!(
            "wrote {written} bytes to {}",
            ctx.workspace.display(&real)
        )))
    }
}
