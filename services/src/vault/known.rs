//! Every secret value this process has handled — each credential the vault sealed or
//! opened, and the tokens and keys the config holds — kept as the forms the redactor
//! matches, so the log writer can take them out of any line, whatever code wrote it.
//! The tool-result redactor names the credential; this one, for logs, only says
//! `[REDACTED]`. Matching is one pass of an Aho-Corasick automaton over the line,
//! however many secrets there are; it is rebuilt only when a new value is seen.

use std::collections::HashSet;
use std::sync::{LazyLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};

#[derive(Default)]
struct Known {
    forms: HashSet<String>,
    matcher: Option<AhoCorasick>,
}

static KNOWN: LazyLock<RwLock<Known>> = LazyLock::new(RwLock::default);

/// Values shorter than this are not redacted from logs: a short credential (a PIN,
/// a word like `error`) would otherwise take ordinary words out of every tenant's logs.
const MIN_LOG_CHARS: usize = 8;

/// Most forms kept; past it new values are not added (and that is logged).
const MAX_FORMS: usize = 100_000;

/// Adds `value` (and its encodings) to the known secrets.
pub fn remember(value: &str) {
    let mut forms = super::secrets::forms(value);
    forms.retain(|form| form.chars().count() >= MIN_LOG_CHARS);
    {
        let known = KNOWN
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if forms.iter().all(|form| known.forms.contains(form)) {
            return;
        }
    }
    let snapshot = {
        let mut known = KNOWN
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.forms.len() >= MAX_FORMS {
            None
        } else {
            known.forms.extend(forms);
            Some(known.forms.iter().cloned().collect::<Vec<_>>())
        }
    };
    // Logged and built with the lock released: the log writer reads it, and building
    // must not hold up every log line.
    let Some(snapshot) = snapshot else {
        tracing::warn!("too many secrets to redact from logs; a new one is not added");
        return;
    };
    // Leftmost-longest: a secret that contains another is replaced whole.
    let built = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&snapshot);
    match built {
        Ok(matcher) => {
            let mut known = KNOWN
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A value added meanwhile is in a newer build; this one would miss it.
            if known.forms.len() == snapshot.len() {
                known.matcher = Some(matcher);
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot build the log redactor; keeping the old one"),
    }
}

/// `text` with every known secret replaced by `[REDACTED]`, or `None` when it holds
/// none (the common case, which allocates nothing).
pub fn redact_known(text: &str) -> Option<String> {
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let matcher = known.matcher.as_ref()?;
    if !matcher.is_match(text) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    matcher.replace_all_with(text, &mut out, |_, _, out| {
        out.push_str("[REDACTED]");
        true
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_values_and_their_encodings_are_redacted() {
        remember("log-secret-4242-value");
        remember("log-secret-4242-value-and-more");
        let line = "token=log-secret-4242-value b64=bG9nLXNlY3JldC00MjQyLXZhbHVl \
                    long=log-secret-4242-value-and-more other";
        assert_eq!(
            redact_known(line).as_deref(),
            Some("token=[REDACTED] b64=[REDACTED] long=[REDACTED] other")
        );
        assert_eq!(redact_known("nothing to see here"), None);
        remember("error");
        assert_eq!(
            redact_known("an error here"),
            None,
            "too short to take out of logs"
        );
    }
}
