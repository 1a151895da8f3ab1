//! Context assembly: the runtime, not the prompt, decides what the model sees — a
//! system prompt built from the workspace's files, and history trimmed to the model's
//! window without separating tool calls from their results.

use std::path::Path;

use crate::domain::{ChatMessage, Role};
use crate::tools::ToolSpec;

/// Workspace files that shape the agent, in the order they enter the system prompt.
pub const WORKSPACE_PROMPT_FILES: [&str; 4] =
    ["AGENTS.md", "SOUL.md", "USER.md", "memory/MEMORY.md"];

/// Most characters one workspace file contributes, so a huge file cannot crowd out history.
const MAX_FILE_CHARS: usize = 20_000;

/// Tokens counted per message for role and framing, on top of its text.
const MESSAGE_OVERHEAD_TOKENS: usize = 4;

/// Builds the system prompt from the runtime's framing and the workspace's files.
///
/// It holds no wall-clock time, only `today`'s date: the first message stays the same
/// from one call to the next, which providers' prompt caching needs (and which
/// [`crate::prompt_cache::SystemPromptCache`] keeps).
pub fn system_prompt(workspace: &Path, max_iterations: u32, today: chrono::NaiveDate) -> String {
    let mut prompt = format!(
        "You are an agent running in the Facio runtime.\n\
         Your workspace is {}. File tools and commands run there; paths are relative to it.\n\
         You may make at most {max_iterations} model calls in one turn; be efficient and finish \
         with a clear answer.\n\
         Tool results that are errors come back as JSON {{\"error\":{{\"type\",\"message\",\"hint\"}}}}: \
         read them and adapt instead of repeating the same call.\n\
         Today's date (UTC): {}.",
        workspace.display(),
        today.format("%Y-%m-%d")
    );
    for name in WORKSPACE_PROMPT_FILES {
        // Read like the skills: a symlink cannot bring a file from outside the
        // workspace into every model request.
        let max_bytes = u64::try_from(MAX_FILE_CHARS * 4).unwrap_or(u64::MAX);
        let Some(text) = crate::skills::read_confined(workspace, &workspace.join(name), max_bytes)
        else {
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        prompt.push_str("\n\n## ");
        prompt.push_str(name);
        prompt.push('\n');
        prompt.push_str(truncate_chars(text, MAX_FILE_CHARS));
    }
    let skills = crate::skills::prompt_section(&crate::skills::list_skills(workspace));
    let scripts = crate::scripts::prompt_section(&crate::scripts::list_scripts(workspace));
    for section in [skills, scripts].into_iter().flatten() {
        prompt.push_str(
            "

",
        );
        prompt.push_str(&section);
    }
    prompt
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((idx, _)) => &text[..idx],
        None => text,
    }
}

/// A rough token estimate (≈4 characters a token). Deliberately conservative and
/// provider-independent: trimming must never overshoot a real window.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

fn message_tokens(message: &ChatMessage) -> usize {
    let text = message.content.as_deref().map_or(0, estimate_tokens);
    let calls: usize = message
        .tool_calls
        .iter()
        .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments) + MESSAGE_OVERHEAD_TOKENS)
        .sum();
    text + calls + MESSAGE_OVERHEAD_TOKENS
}

/// Tokens the tool specs cost in every request.
pub fn tool_spec_tokens(tools: &[ToolSpec]) -> usize {
    tools
        .iter()
        .map(|t| {
            estimate_tokens(&t.name)
                + estimate_tokens(&t.description)
                + estimate_tokens(&t.parameters.to_string())
        })
        .sum()
}

/// The messages sent to the model: the system prompt, then the newest history that
/// fits in `window_tokens` minus what the reply and the tool specs (`tool_tokens`,
/// see [`crate::tools::ToolSpecs::tokens`]) need.
///
/// History is cut only at the start of a user message, so an assistant's tool calls
/// always travel with their results, and the conversation never opens mid-exchange.
/// The newest user message is always kept, even when it alone exceeds the budget.
pub fn assemble(
    system: String,
    history: &[ChatMessage],
    tool_tokens: usize,
    window_tokens: usize,
    reply_tokens: usize,
) -> Vec<ChatMessage> {
    let system = ChatMessage::system(system);
    let fixed = message_tokens(&system) + tool_tokens + reply_tokens;
    let mut budget = window_tokens.saturating_sub(fixed);

    let mut start = history.len();
    let mut pending = 0usize;
    for (idx, message) in history.iter().enumerate().rev() {
        pending += message_tokens(message);
        if message.role != Role::User {
            continue;
        }
        // A user message starts a self-contained exchange: take it whole or stop.
        if pending > budget && start != history.len() {
            break;
        }
        budget = budget.saturating_sub(pending);
        pending = 0;
        start = idx;
    }
    if start == history.len() {
        // No user message at all (e.g. an imported history): keep what fits from the end,
        // still never opening on a tool result.
        start = history.len().saturating_sub(1);
        while start > 0 && history[start].role == Role::Tool {
            start -= 1;
        }
    }

    let mut messages = Vec::with_capacity(history.len() - start + 1);
    messages.push(system);
    messages.extend(history[start..].iter().cloned());
    messages
}

/// Tool calls of the last assistant message that have no result yet, in order.
pub fn unanswered_tool_calls(history: &[ChatMessage]) -> Vec<crate::domain::ToolCall> {
    let Some(pos) = history.iter().rposition(|m| m.role == Role::Assistant) else {
        return Vec::new();
    };
    let answered: Vec<&str> = history[pos + 1..]
        .iter()
        .filter(|m| m.role == Role::Tool)
        .filter_map(|m| m.tool_call_id.as_deref())
        .collect();
    history[pos]
        .tool_calls
        .iter()
        .filter(|c| !answered.contains(&c.id.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ToolCall;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "read_file".into(),
            arguments: "{}".into(),
        }
    }

    fn exchange(n: usize, size: usize) -> Vec<ChatMessage> {
        let c = call(&format!("c{n}"));
        vec![
            ChatMessage::user(format!("q{n} {}", "x".repeat(size))),
            ChatMessage::assistant_tool_calls(None, vec![c.clone()]),
            ChatMessage::tool_result(&c, "y".repeat(size)),
            ChatMessage::assistant(format!("a{n}")),
        ]
    }

    #[test]
    fn trims_whole_exchanges_and_keeps_tool_results_with_calls() {
        let history: Vec<_> = (0..10).flat_map(|n| exchange(n, 400)).collect();
        let messages = assemble("sys".into(), &history, 0, 1000, 100);
        assert_eq!(messages[0].role, Role::System);
        assert_eq!(messages[1].role, Role::User, "never opens mid-exchange");
        assert!(messages.len() < history.len(), "history was trimmed");
        assert_eq!(messages.last(), history.last());
        for (i, m) in messages.iter().enumerate() {
            if m.role == Role::Tool {
                assert!(messages[..i].iter().any(|p| {
                    p.tool_calls
                        .iter()
                        .any(|c| Some(&c.id) == m.tool_call_id.as_ref())
                }));
            }
        }
    }

    #[test]
    fn keeps_the_newest_user_message_even_when_too_big() {
        let history = vec![ChatMessage::user("z".repeat(100_000))];
        let messages = assemble("sys".into(), &history, 0, 1000, 100);
        assert_eq!(messages.len(), 2);
    }

    #[test]
    fn finds_unanswered_calls() {
        let (a, b) = (call("a"), call("b"));
        let history = vec![
            ChatMessage::user("q"),
            ChatMessage::assistant_tool_calls(None, vec![a.clone(), b.clone()]),
            ChatMessage::tool_result(&a, "done"),
        ];
        assert_eq!(unanswered_tool_calls(&history), vec![b]);
        assert!(unanswered_tool_calls(&history[..1]).is_empty());
    }

    #[test]
    fn system_prompt_includes_workspace_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("memory")).ok();
        std::fs::write(dir.path().join("SOUL.md"), "Be kind.").ok();
        std::fs::write(dir.path().join("memory/MEMORY.md"), "User likes tea.").ok();
        let prompt = system_prompt(dir.path(), 7, chrono::NaiveDate::MIN);
        assert!(prompt.contains("## SOUL.md\nBe kind."));
        assert!(prompt.contains("User likes tea."));
        assert!(prompt.contains("at most 7 model calls"));
        assert!(!prompt.contains("AGENTS.md"));
    }

    #[test]
    fn a_prompt_file_symlinked_from_outside_the_workspace_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "outside notes").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("AGENTS.md"),
        )
        .unwrap();
        let prompt = system_prompt(dir.path(), 7, chrono::NaiveDate::MIN);
        assert!(!prompt.contains("outside notes"), "{prompt}");
    }
}
