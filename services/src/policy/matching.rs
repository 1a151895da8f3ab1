//! Matching rules against a call, hardened against small argument changes.

use serde_json::Value;

use super::{CallContext, PolicyRule, RuleAction};

fn glob(pattern: &str, text: &str) -> bool {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher().is_match(text))
        .unwrap_or(false)
}

/// Trimmed, whitespace runs collapsed.
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tool_matches(rule: &PolicyRule, tool: &str) -> bool {
    rule.tool == tool || glob(&rule.tool, tool)
}

/// Whether every param pattern of the rule matches `args`, with `command` replaced by
/// `segment` when given.
fn params_match(rule: &PolicyRule, args: &Value, segment: Option<&str>) -> bool {
    rule.params.iter().flatten().all(|(name, pattern)| {
        let actual = match (name.as_str(), segment) {
            ("command", Some(segment)) => Value::String(segment.to_owned()),
            _ => args.get(name).cloned().unwrap_or(Value::Null),
        };
        match (pattern, &actual) {
            (Value::String(p), Value::String(a)) => glob(&normalize(p), &normalize(a)),
            (Value::String(p), other) if !other.is_null() => {
                glob(&normalize(p), &other.to_string())
            }
            (p, a) => p == a,
        }
    })
}

/// The command segments of an `exec` call (the whole command for other tools).
fn segments(call: &CallContext<'_>) -> Option<Vec<String>> {
    if call.tool != "exec" {
        return None;
    }
    let command = call.args.get("command")?.as_str()?;
    Some(split_command(command))
}

pub(super) fn split_command(command: &str) -> Vec<String> {
    let mut parts = Vec::new();
    // Substitutions run too: their contents are segments of their own.
    let mut rest = command.to_owned();
    for (open, close) in [("$(", ")"), ("`", "`")] {
        while let Some(start) = rest.find(open) {
            let after = start + open.len();
            let Some(len) = rest[after..].find(close) else {
                break;
            };
            let inner = rest[after..after + len].to_owned();
            parts.extend(split_command(&inner));
            rest.replace_range(start..after + len + close.len(), " ");
        }
    }
    let mut current = String::new();
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        if two == "&&" || two == "||" {
            parts.push(std::mem::take(&mut current));
            i += 2;
            continue;
        }
        if matches!(c, ';' | '|' | '\n' | '&') {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
        i += 1;
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| normalize(&p))
        .filter(|p| !p.is_empty())
        .collect()
}

pub(super) fn deny_matches(rule: &PolicyRule, call: &CallContext<'_>) -> bool {
    if !tool_matches(rule, call.tool) {
        return false;
    }
    match segments(call) {
        Some(segments)
            if rule
                .params
                .as_ref()
                .is_some_and(|p| p.contains_key("command")) =>
        {
            segments
                .iter()
                .any(|s| params_match(rule, call.args, Some(s)))
                || params_match(rule, call.args, None)
        }
        _ => params_match(rule, call.args, None),
    }
}

pub(super) fn allowed(rules: &[PolicyRule], call: &CallContext<'_>) -> bool {
    let allows: Vec<&PolicyRule> = rules
        .iter()
        .filter(|r| r.action == RuleAction::Allow && tool_matches(r, call.tool))
        .collect();
    match segments(call) {
        Some(segments) if !segments.is_empty() => segments.iter().all(|segment| {
            allows
                .iter()
                .any(|r| params_match(r, call.args, Some(segment)))
        }),
        _ => allows.iter().any(|r| params_match(r, call.args, None)),
    }
}
