//! `list_dir`: what is in a directory, sorted, directories marked with `/`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::text_file::io_error;
use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};

const DEFAULT_MAX: usize = 500;

pub struct ListDirTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
    max_entries: Option<usize>,
}

#[async_trait]
impl Tool for ListDirTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "list_dir".into(),
            description: "List a workspace directory (default: the workspace root). \
                Directories end with '/'. Set recursive to walk subdirectories (.git is skipped)."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Directory relative to the workspace (default '.')"},
                    "recursive": {"type": "boolean", "description": "Include subdirectories (default false)"},
                    "max_entries": {"type": "integer", "minimum": 1, "description": "Most entries to return (default 500)"}
                },
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
        let shown = args.path.clone().unwrap_or_else(|| ".".into());
        let real = ctx.workspace.resolve(&shown)?;
        let meta = std::fs::metadata(&real).map_err(|e| io_error(&shown, &e))?;
        if !meta.is_dir() {
            return Err(ToolError::new(
                ToolErrorKind::InvalidArguments,
                format!("{shown} is not a directory"),
            )
            .with_hint("use read_file for files"));
        }
        let max = args.max_entries.unwrap_or(DEFAULT_MAX).max(1);
        let depth = if args.recursive { usize::MAX } else { 1 };
        let mut entries = Vec::new();
        let mut truncated = false;
        let walker = walkdir::WalkDir::new(&real)
            .min_depth(1)
            .max_depth(depth)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git");
        for entry in walker.filter_map(Result::ok) {
            if entries.len() >= max {
                truncated = true;
                break;
            }
            let rel = entry.path().strip_prefix(&real).unwrap_or(entry.path());
            let slash = if entry.file_type().is_dir() { "/" } else { "" };
            entries.push(format!("{}{slash}", rel.display()));
        }
        if entries.is_empty() {
            return Ok(ToolOutput::text(format!("{shown} is empty")));
        }
        let mut out = entries.join("\n");
        if truncated {
            out.push_str(&format!(
                "\n[stopped at {max} entries; raise max_entries or list a subdirectory]"
            ));
        }
        Ok(ToolOutput::text(out))
    }
}
