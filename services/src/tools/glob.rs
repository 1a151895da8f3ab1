//! `glob`: workspace files matching a pattern such as `src/**/*.rs`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};

const MAX_RESULTS: usize = 1000;

pub struct GlobTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    path: Option<String>,
}

#[async_trait]
impl Tool for GlobTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "glob".into(),
            description: "Find workspace files whose path matches a glob pattern \
                (e.g. '**/*.md', 'src/*.rs'). Paths are relative to the search directory."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Glob pattern"},
                    "path": {"type": "string", "description": "Directory to search (default '.')"}
                },
                "required": ["pattern"],
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
        let matcher = globset::Glob::new(&args.pattern)
            .map_err(|e| {
                ToolError::new(
                    ToolErrorKind::InvalidArguments,
                    format!("invalid pattern: {e}"),
                )
            })?
            .compile_matcher();
        let base = ctx.workspace.resolve(args.path.as_deref().unwrap_or("."))?;
        let mut found = Vec::new();
        let walker = walkdir::WalkDir::new(&base)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git");
        for entry in walker
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            let rel = entry.path().strip_prefix(&base).unwrap_or(entry.path());
            if matcher.is_match(rel) {
                found.push(rel.display().to_string());
                if found.len() > MAX_RESULTS {
                    break;
                }
            }
        }
        if found.is_empty() {
            return Ok(ToolOutput::text(format!("no files match {}", args.pattern)));
        }
        let truncated = found.len() > MAX_RESULTS;
        found.truncate(MAX_RESULTS);
        let mut out = found.join("\n");
        if truncated {
            out.push_str(&format!(
                "\n[more than {MAX_RESULTS} matches; narrow the pattern]"
            ));
        }
        Ok(ToolOutput::text(out))
    }
}
