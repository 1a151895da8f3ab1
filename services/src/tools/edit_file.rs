//! `edit_file`: exact text replacement, with the closest match shown when the text
//! is not found so the model can correct itself in one step.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::text_file::{read_view, write_view};
use super::{
    RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec, parse_args,
};

pub struct EditFileTool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    old_text: String,
    new_text: String,
    #[serde(default)]
    replace_all: bool,
}

#[async_trait]
impl Tool for EditFileTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "edit_file".into(),
            description: "Replace exact text in a workspace file. old_text must match the file \
                exactly (whitespace included) and occur once, unless replace_all is true."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path relative to the workspace"},
                    "old_text": {"type": "string", "description": "Exact text to replace"},
                    "new_text": {"type": "string", "description": "Replacement text"},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)"}
                },
                "required": ["path", "old_text", "new_text"],
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
        if args.old_text.is_empty() {
            return Err(ToolError::new(
                ToolErrorKind::InvalidArguments,
                "old_text must not be empty",
            )
            .with_hint("use write_file to create a file"));
        }
        let real = ctx.workspace.resolve(&args.path)?;
        // The edit applies to the placeholder view and is resolved again on write, so it
        // can move or drop a credential's placeholder but never change its value.
        let view = read_view(ctx, &real, &args.path).await?;
        let text = &view.text;
        let count = text.matches(&args.old_text).count();
        if count == 0 {
            let hint = match closest_region(text, &args.old_text) {
                Some(region) => format!(
                    "the most similar text in the file is:\n{}",
                    ctx.secrets.redact(&region)
                ),
                None => "read_file shows the current content".to_owned(),
            };
            return Err(ToolError::new(
                ToolErrorKind::NoMatch,
                format!("old_text was not found in {}", args.path),
            )
            .with_hint(hint));
        }
        if count > 1 && !args.replace_all {
            return Err(ToolError::new(
                ToolErrorKind::InvalidArguments,
                format!("old_text occurs {count} times in {}", args.path),
            )
            .with_hint("add surrounding lines to make it unique, or set replace_all"));
        }
        let updated = text.replace(&args.old_text, &args.new_text);
        write_view(ctx, "edit_file", &real, &args.path, &view, &updated).await?;
        Ok(ToolOutput::text(format!(
            "replaced {count} occurrence{} in {}",
            if count == 1 { "" } else { "s" },
            ctx.workspace.display(&real)
        )))
    }
}

/// The window of lines most like `wanted`, numbered, or `None` for an empty file.
fn closest_region(text: &str, wanted: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let wanted: Vec<&str> = wanted.lines().collect();
    let size = wanted.len().max(1).min(lines.len());
    if size == 0 {
        return None;
    }
    let (best, _) = (0..=lines.len() - size)
        .map(|start| {
            let score: f64 = lines[start..start + size]
                .iter()
                .zip(&wanted)
                .map(|(a, b)| similarity(a.trim(), b.trim()))
                .sum();
            (start, score)
        })
        .fold((0, f64::MIN), |acc, x| if x.1 > acc.1 { x } else { acc });
    Some(
        lines[best..best + size]
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{:>6}\t{l}", best + i + 1))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Dice coefficient over character bigrams: cheap and good at near-misses.
fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let grams = |s: &str| -> Vec<(char, char)> {
        let chars: Vec<char> = s.chars().collect();
        chars.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let (ga, mut gb) = (grams(a), grams(b));
    if ga.is_empty() || gb.is_empty() {
        return 0.0;
    }
    let total = ga.len() + gb.len();
    let mut common = 0;
    for g in ga {
        if let Some(i) = gb.iter().position(|x| *x == g) {
            gb.swap_remove(i);
            common += 1;
        }
    }
    2.0 * f64::from(common) / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_region_is_the_near_miss() {
        let text = "fn main() {\n    println!(\"hello\");\n}\nfn other() {}\n";
        let region = closest_region(text, "    println!(\"helo\");").unwrap();
        assert!(region.contains("2\t    println!(\"hello\");"), "{region}");
    }
}
