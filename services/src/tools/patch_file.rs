//! `patch_file`: apply a unified diff to one or more workspace files, all or nothing.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::text_file::{read_view, refuse_index, write_view};
use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};
use crate::vault::PlaceholderView;

pub struct PatchFileTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    patch: String,
}

/// One file's section of a multi-file diff.
struct Section {
    path: Option<String>,
    text: String,
}

#[async_trait]
impl Tool for PatchFileTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "patch_file".into(),
            description: "Apply a unified diff (---/+++ headers and @@ hunks) to one or more \
                workspace files. Use /dev/null as the old file to create one. Nothing is written \
                unless every hunk applies."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {"patch": {"type": "string", "description": "Unified diff text"}},
                "required": ["patch"],
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
        let sections = split(&args.patch);
        if sections.is_empty() {
            return Err(invalid("the patch has no ---/+++ file headers"));
        }
        // Validate and compute every file first; write only when all apply.
        let mut results = Vec::new();
        for section in sections {
            let path = section
                .path
                .ok_or_else(|| invalid("a +++ header names no file"))?;
            let real = ctx.workspace.resolve(&path)?;
            refuse_index(ctx, &real, &path)?;
            // Hunks apply to the placeholder view, as read_file shows it.
            let original = if section.text.starts_with("--- /dev/null") {
                PlaceholderView::default()
            } else {
                read_view(ctx, &real, &path).await?
            };
            let patch = diffy::Patch::from_str(&section.text)
                .map_err(|e| invalid(&format!("cannot parse the diff for {path}: {e}")))?;
            let updated = diffy::apply(&original.text, &patch).map_err(|e| {
                ToolError::new(
                    ToolErrorKind::NoMatch,
                    format!("the diff does not apply to {path}: {e}"),
                )
                .with_hint("read_file the current content and regenerate the hunk")
            })?;
            // Resolved now, so a placeholder that cannot be written refuses the whole
            // patch before any file changes.
            ctx.secrets
                .resolve_view("patch_file", &original, &updated)
                .map_err(super::text_file::credential_error)?;
            results.push((real, path, original, updated));
        }
        let mut done = Vec::new();
        for (real, path, original, updated) in &results {
            write_view(ctx, "patch_file", real, path, original, updated).await?;
            done.push(path.as_str());
        }
        Ok(ToolOutput::text(format!("patched {}", done.join(", "))))
    }
}

fn invalid(message: &str) -> ToolError {
    ToolError::new(ToolErrorKind::InvalidArguments, message)
        .with_hint("send a unified diff: '--- a/file', '+++ b/file', then @@ hunks")
}

/// Splits a diff at each `--- ` header that is followed by `+++ `.
fn split(patch: &str) -> Vec<Section> {
    let lines: Vec<&str> = patch.lines().collect();
    let mut starts = Vec::new();
    for i in 0..lines.len().saturating_sub(1) {
        if lines[i].starts_with("--- ") && lines[i + 1].starts_with("+++ ") {
            starts.push(i);
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(lines.len());
            let mut text = lines[start..end].join("\n");
            text.push('\n');
            let target = lines[start + 1].trim_start_matches("+++ ");
            let target = target.split('\t').next().unwrap_or(target).trim();
            let path = (target != "/dev/null")
                .then(|| target.strip_prefix("b/").unwrap_or(target).to_owned());
            Section { path, text }
        })
        .collect()
}
