//! Matching rules against a call, hardened against small argument changes. `exec`
//! commands are matched word by word against what [`shell`] reads from the line.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use globset::GlobMatcher;
use serde_json::Value;

use super::shell::{self, Reading, ShellWord};
use super::{CallContext, PolicyRule, RuleAction};

/// The globs of one policy document, each compiled the first time a call needs it and
/// kept with the document: a pattern is compiled once, not once per call. Only the
/// document's own patterns are ever keys, so it holds at most a few per rule.
#[derive(Default)]
pub(super) struct GlobCache {
    allow: RwLock<HashMap<String, Option<Arc<GlobMatcher>>>>,
    deny: RwLock<HashMap<String, Option<Arc<GlobMatcher>>>>,
}

impl GlobCache {
    /// A glob as each side reads it. A deny glob's `*` crosses `/` (deny rules err
    /// toward matching); an allow glob's `*` and `?` stay inside one path segment, so
    /// `tools/*.sh` is not `tools/sub/x.sh`. `None`: it does not compile.
    fn matcher_for(&self, pattern: &str, side: Side) -> Option<Arc<GlobMatcher>> {
        let map = match side {
            Side::Allow => &self.allow,
            Side::Deny => &self.deny,
        };
        if let Some(found) = map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pattern)
        {
            return found.clone();
        }
        let compiled = globset::GlobBuilder::new(pattern)
            .literal_separator(side == Side::Allow)
            .build()
            .ok()
            .map(|g| Arc::new(g.compile_matcher()));
        map.write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pattern.to_owned(), compiled.clone());
        compiled
    }

    fn glob(&self, pattern: &str, text: &str) -> bool {
        self.matcher_for(pattern, Side::Deny)
            .is_some_and(|m| m.is_match(text))
    }
}

/// Whether `text` climbs with a `..` path segment (`a/../b`, `..`): an allow glob
/// never covers such a word, however it is written.
fn climbs(text: &str) -> bool {
    text.split(['/', '\\']).any(|segment| segment == "..")
}

/// The host of `url`, with its port when it names one.
fn authority(url: &reqwest::Url, host: &str) -> String {
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Whether a rule's host glob (`*.example.com`, `api.example.com:8443`) covers `actual`.
fn host_fits(globs: &GlobCache, pattern: &str, actual: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    pattern == actual
        || globs
            .matcher_for(&pattern, Side::Allow)
            .is_some_and(|m| m.is_match(actual))
}

/// An allow glob on one argument's text. A pattern that is a URL
/// (`https://*.example.com/*`) is matched on the parsed URL: scheme, host and the
/// rest each on their own, so `https://evil.net/.example.com/x` or
/// `https://evil.net?.example.com` is not a host of example.com.
fn allow_glob(globs: &GlobCache, pattern: &str, text: &str) -> bool {
    if let Some((scheme, rest)) = pattern.split_once("://") {
        let (host, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(url) = reqwest::Url::parse(text) else {
            return false;
        };
        let Some(actual_host) = url.host_str() else {
            return false;
        };
        let mut actual_tail = url.path().trim_start_matches('/').to_owned();
        if let Some(query) = url.query() {
            actual_tail.push('?');
            actual_tail.push_str(query);
        }
        let tail_ok = if tail.is_empty() {
            actual_tail.is_empty()
        } else {
            // The path of a URL on the right host: `*` may span its segments.
            globs
                .matcher_for(tail, Side::Deny)
                .is_some_and(|m| m.is_match(&actual_tail))
        };
        return url.scheme().eq_ignore_ascii_case(scheme)
            && url.username().is_empty()
            && url.password().is_none()
            && url.fragment().is_none()
            && host_fits(globs, host, &authority(&url, actual_host))
            && tail_ok;
    }
    if pattern == text {
        return true;
    }
    !climbs(text)
        && globs
            .matcher_for(pattern, Side::Allow)
            .is_some_and(|m| m.is_match(text))
}

/// Trimmed, whitespace runs collapsed.
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tool_matches(globs: &GlobCache, rule: &PolicyRule, tool: &str) -> bool {
    rule.tool == tool || globs.glob(&rule.tool, tool)
}

/// Whether every param pattern of the rule, except `skip`, matches `args`.
fn params_match(globs: &GlobCache, rule: &PolicyRule, args: &Value, skip: Option<&str>) -> bool {
    let side = if rule.action == RuleAction::Allow {
        Side::Allow
    } else {
        Side::Deny
    };
    let glob = |pattern: &str, text: &str| match side {
        Side::Allow => allow_glob(globs, pattern, text),
        Side::Deny => globs.glob(pattern, text),
    };
    rule.params
        .iter()
        .flatten()
        .filter(|(name, _)| Some(name.as_str()) != skip)
        .all(|(name, pattern)| {
            let actual = args.get(name).cloned().unwrap_or(Value::Null);
            match (pattern, &actual) {
                (Value::String(p), Value::String(a)) => glob(&normalize(p), &normalize(a)),
                (Value::String(p), other) if !other.is_null() => {
                    glob(&normalize(p), &other.to_string())
                }
                (p, a) => p == a,
            }
        })
}

/// The `command` glob of a rule, when it has one.
fn command_pattern(rule: &PolicyRule) -> Option<&str> {
    rule.params.as_ref()?.get("command")?.as_str()
}

/// The command line of an `exec` call, read once for every rule; `None` for other
/// tools, for a call without a string `command`, and when no rule names a command.
pub(super) fn exec_line(
    globs: &GlobCache,
    rules: &[PolicyRule],
    call: &CallContext<'_>,
) -> Option<Reading> {
    if call.tool != "exec" {
        return None;
    }
    let command = call.args.get("command")?.as_str()?;
    rules
        .iter()
        .any(|r| command_pattern(r).is_some() && tool_matches(globs, r, call.tool))
        .then(|| shell::read(command))
}

/// How a command pattern is read: a deny rule errs toward matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Allow,
    Deny,
}

/// One word of a command pattern.
enum PatternWord {
    /// A glob on one word (`None`: a glob that does not compile, matching nothing),
    /// read for one side.
    Word(Option<Arc<GlobMatcher>>, Side),
    /// Any number of words, none included.
    AnyWords,
}

/// A command pattern split into words: a `*` word stands for any number of words; a
/// final word ending in `*` (`status*`) stands for that word followed by any number
/// of words (for a deny rule, also for any word it globs: `-r*` is `-rf` too); every
/// other word is a glob on exactly one word.
fn pattern_words(globs: &GlobCache, pattern: &str, side: Side) -> Vec<PatternWord> {
    let words: Vec<&str> = pattern.split_whitespace().collect();
    let mut items = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if word.chars().all(|c| c == '*') {
            items.push(PatternWord::AnyWords);
            continue;
        }
        let last = i + 1 == words.len();
        if last && word.ends_with('*') && !word.ends_with("\\*") {
            let head = match side {
                Side::Allow => word.trim_end_matches('*'),
                Side::Deny => word,
            };
            items.push(PatternWord::Word(globs.matcher_for(head, side), side));
            items.push(PatternWord::AnyWords);
            continue;
        }
        items.push(PatternWord::Word(globs.matcher_for(word, side), side));
    }
    items
}

/// Whether `words` match `pattern`. An expanded word (deny side only) may stand for
/// any number of words, so it matches any run of pattern words.
fn words_match(pattern: &[PatternWord], words: &[ShellWord]) -> bool {
    let (n, m) = (pattern.len(), words.len());
    // done[i][j]: pattern[i..] matches words[j..].
    let width = m + 1;
    let mut done = vec![false; (n + 1) * width];
    done[n * width + m] = true;
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            if i == n && j == m {
                continue;
            }
            let at = |i: usize, j: usize| done[i * width + j];
            let mut hit = false;
            if let Some(PatternWord::AnyWords) = pattern.get(i) {
                hit |= at(i + 1, j) || (j < m && at(i, j + 1));
            }
            if let Some(ShellWord::Expanded) = words.get(j) {
                hit |= at(i, j + 1) || (i < n && at(i + 1, j));
            }
            if let (Some(PatternWord::Word(Some(glob), side)), Some(ShellWord::Literal(word))) =
                (pattern.get(i), words.get(j))
            {
                // An allowed word never climbs out with `..` unless the rule spells
                // it out exactly.
                let fits = match side {
                    Side::Allow => {
                        glob.is_match(word) && (!climbs(word) || glob.glob().glob() == word)
                    }
                    Side::Deny => glob.is_match(word),
                };
                hit |= fits && at(i + 1, j + 1);
            }
            done[i * width + j] = hit;
        }
    }
    done[0]
}

/// The command as deny rules see it: as written, and with the program's directory
/// removed (`/usr/bin/touch x` is also `touch x`).
fn deny_forms(words: &[ShellWord]) -> Vec<Vec<ShellWord>> {
    let mut forms = vec![words.to_vec()];
    if let Some(ShellWord::Literal(name)) = words.first() {
        let base = shell::basename(name);
        if base != name {
            let mut short = words.to_vec();
            short[0] = ShellWord::Literal(base.to_owned());
            forms.push(short);
        }
    }
    forms
}

fn shown(words: &[ShellWord]) -> String {
    let text = words
        .iter()
        .map(|w| match w {
            ShellWord::Literal(text) => text.as_str(),
            ShellWord::Expanded => "…",
        })
        .collect::<Vec<_>>()
        .join(" ");
    let short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// Whether a deny rule matches the call; `Some(detail)` says how (empty when the
/// rule matches the arguments as a whole).
pub(super) fn deny_matches(
    globs: &GlobCache,
    rule: &PolicyRule,
    call: &CallContext<'_>,
    line: Option<&Reading>,
) -> Option<String> {
    if rule.action != RuleAction::Deny || !tool_matches(globs, rule, call.tool) {
        return None;
    }
    let (Some(reading), Some(pattern)) = (line, command_pattern(rule)) else {
        return params_match(globs, rule, call.args, None).then(String::new);
    };
    if !params_match(globs, rule, call.args, Some("command")) {
        return None;
    }
    if params_match(globs, rule, call.args, None) {
        return Some(String::new());
    }
    let pattern = pattern_words(globs, pattern, Side::Deny);
    let matched = reading.commands.iter().find(|words| {
        matches!(words.first(), Some(ShellWord::Literal(_)))
            && deny_forms(words)
                .iter()
                .any(|form| words_match(&pattern, form))
    });
    if let Some(words) = matched {
        return Some(format!(": the command runs `{}`", shown(words)));
    }
    // A program only known at run time always leaves the line unresolved.
    reading
        .unresolved
        .as_ref()
        .map(|why| format!(": the command could not be resolved ({why})"))
}

/// Whether allow rules cover the call: `Some(network)` when they do, with whether
/// the covering rules grant network (always false for tools other than `exec`).
pub(super) fn allowed(
    globs: &GlobCache,
    rules: &[PolicyRule],
    call: &CallContext<'_>,
    line: Option<&Reading>,
) -> Option<bool> {
    let allows: Vec<&PolicyRule> = rules
        .iter()
        .filter(|r| r.action == RuleAction::Allow && tool_matches(globs, r, call.tool))
        .collect();
    let exec = call.tool == "exec";
    // A rule naming no command covers any command line its other params match.
    let whole: Vec<&&PolicyRule> = allows
        .iter()
        .filter(|r| line.is_none() || command_pattern(r).is_none())
        .filter(|r| params_match(globs, r, call.args, None))
        .collect();
    if !whole.is_empty() {
        return Some(exec && whole.iter().any(|r| r.network));
    }
    let reading = line?;
    if reading.unresolved.is_some() {
        return None;
    }
    let commands = reading.plain.as_ref().ok()?;
    let mut network = true;
    for command in commands {
        let words: Vec<ShellWord> = command
            .iter()
            .map(|w| ShellWord::Literal(w.clone()))
            .collect();
        let covering: Vec<&&PolicyRule> = allows
            .iter()
            .filter(|r| {
                command_pattern(r).is_some_and(|p| {
                    params_match(globs, r, call.args, Some("command"))
                        && words_match(&pattern_words(globs, p, Side::Allow), &words)
                })
            })
            .collect();
        if covering.is_empty() {
            return None;
        }
        network &= covering.iter().any(|r| r.network);
    }
    Some(network)
}
