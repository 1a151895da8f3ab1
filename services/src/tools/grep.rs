//! `grep`: regex search over workspace text files, `path:line:text` with context.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::text_file::MAX_TEXT_BYTES;
use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};

const DEFAULT_MAX_MATCHES: usize = 200;

pub struct GrepTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
    #[serde(default)]
    context: usize,
    #[serde(default)]
    case_insensitive: bool,
    max_matches: Option<usize>,
}

#[async_trait]
impl Tool for GrepTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "grep".into(),
            description: "Search workspace text files with a regular expression. Output lines are \
                'path:line:text' (context lines use '-'). Binary files and .git are skipped."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression (Rust regex syntax)"},
                    "path": {"type": "string", "description": "File or directory to search (default '.')"},
                    "glob": {"type": "string", "description": "Only files whose relative path matches, e.g. '*.rs'"},
                    "context": {"type": "integer", "minimum": 0, "description": "Lines of context around each match"},
                    "case_insensitive": {"type": "boolean"},
                    "max_matches": {"type": "integer", "minimum": 1, "description": "Stop after this many matches (default 200)"}
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
        let regex = regex::RegexBuilder::new(&args.pattern)
            .case_insensitive(args.case_insensitive)
            .build()
            .map_err(|e| {
                ToolError::new(
                    ToolErrorKind::InvalidArguments,
                    format!("invalid regex: {e}"),
                )
            })?;
        let filter = args
            .glob
            .as_deref()
            .map(|g| globset::Glob::new(g).map(|g| g.compile_matcher()))
            .transpose()
            .map_err(|e| {
                ToolError::new(
                    ToolErrorKind::InvalidArguments,
                    format!("invalid glob: {e}"),
                )
            })?;
        let base = ctx.workspace.resolve(args.path.as_deref().unwrap_or("."))?;
        let max = args.max_matches.unwrap_or(DEFAULT_MAX_MATCHES).max(1);
        let mut out = Vec::new();
        let mut matches = 0;
        let walker = walkdir::WalkDir::new(&base)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git");
        'files: for entry in walker
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            let rel = ctx.workspace.display(entry.path());
            if let Some(filter) = &filter {
                let name = entry.path().strip_prefix(&base).unwrap_or(entry.path());
                if !filter.is_match(name) && !filter.is_match(entry.file_name()) {
                    continue;
                }
            }
            if entry
                .metadata()
                .map(|m| m.len() > MAX_TEXT_BYTES)
                .unwrap_or(true)
            {
                continue;
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            if bytes.iter().take(8192).any(|b| *b == 0) {
                continue;
            }
            if ctx.secrets.is_index(entry.path()) {
                continue;
            }
            // The search runs over what read_file shows: credential values as their
            // placeholders and their encodings redacted, so no pattern can probe them.
            let text = ctx.secrets.redact(
                &ctx.secrets
                    .placeholder_view(&String::from_utf8_lossy(&bytes))
                    .text,
            );
            let lines: Vec<&str> = text.lines().collect();
            let mut printed_until = 0;
            for (i, line) in lines.iter().enumerate() {
                if !regex.is_match(line) {
                    continue;
                }
                let from = i.saturating_sub(args.context).max(printed_until);
                let to = (i + args.context + 1).min(lines.len());
                for (j, l) in lines.iter().enumerate().take(to).skip(from) {
                    let sep = if j == i || regex.is_match(l) {
                        ':'
                    } else {
                        '-'
                    };
                    out.push(format!("{rel}{sep}{}{sep}{l}", j + 1));
                }
                printed_until = to;
                matches += 1;
                if matches >= max {
                    out.push(format!("[stopped at {max} matches]"));
                    break 'files;
                }
            }
        }
        if out.is_empty() {
            return Ok(ToolOutput::text(format!("no matches for {}", args.pattern)));
        }
        Ok(ToolOutput::text(out.join("\n")))
    }
}
