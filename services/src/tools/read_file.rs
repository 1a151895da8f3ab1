//! `read_file`: numbered lines of a text file, a window at a time.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::text_file::read_view;
use super::{RiskTier, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, parse_args};

const DEFAULT_LIMIT: usize = 2000;
const MAX_LINE_CHARS: usize = 2000;

pub struct ReadFileTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    offset: Option<usize>,
    limit: Option<usize>,
}

#[async_trait]
impl Tool for ReadFileTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read_file".into(),
            description: "Read a text file in the workspace. Returns numbered lines \
                (line number, tab, text). Use offset (1-based first line) and limit to page \
                through long files."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path relative to the workspace"},
                    "offset": {"type": "integer", "minimum": 1, "description": "First line to read (1-based)"},
                    "limit": {"type": "integer", "minimum": 1, "description": "Most lines to return (default 2000)"}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
            risk: RiskTier::ReadOnly,
        }
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: Args = parse_args(args)?;
        let real = ctx.workspace.resolve(&args.path)?;
        // Credential values are shown as their placeholders, and what else the redactor
        // knows (their encodings) is redacted, both before long lines are cut, so a cut
        // cannot split a secret past either.
        let text = ctx
            .secrets
            .redact(&read_view(ctx, &real, &args.path).await?.text);
        let lines: Vec<&str> = text.lines().collect();
        let start = args.offset.unwrap_or(1).max(1);
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT).max(1);
        if lines.is_empty() {
            return Ok(ToolOutput::text(format!("{} is empty", args.path)));
        }
        if start > lines.len() {
            return Err(ToolError::new(
                super::ToolErrorKind::InvalidArguments,
                format!(
                    "offset {start} is past the end: {} has {} lines",
                    args.path,
                    lines.len()
                ),
            ));
        }
        let end = (start - 1 + limit).min(lines.len());
        let mut out = String::new();
        for (i, line) in lines[start - 1..end].iter().enumerate() {
            let shown: String = line.chars().take(MAX_LINE_CHARS).collect();
            let cut = if shown.len() < line.len() {
                " [line truncated]"
            } else {
                ""
            };
            out.push_str(&format!("{:>6}\t{shown}{cut}\n", start + i));
        }
        if end < lines.len() {
            out.push_str(&format!(
                "[{} more lines; continue with offset {}]\n",
                lines.len() - end,
                end + 1
            ));
        }
        Ok(ToolOutput::text(out))
    }
}
