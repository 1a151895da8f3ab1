//! Every secret value this process has handled — each credential the vault sealed or
//! opened, and the tokens and keys the config holds — kept as the forms the redactor
//! matches, so the log writer can take them out of any line, whatever code wrote it.
//! The tool-result redactor names the credential; this one, for logs, only says
//! `[REDACTED]`. Matching is one pass of an Aho-Corasick automaton over the line,
//! however many secrets there are; it is rebuilt only when a new value is seen.

use std::collections::HashSet;
use std::sync::{Condvar, LazyLock, Mutex, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

#[derive(Default)]
struct Known {
    forms: HashSet<String>,
    matcher: Option<AhoCorasick>,
    /// Forms added since the matcher was built: matched one by one until the next
    /// build (in the background) takes them in, so none is missed meanwhile.
    pending: Vec<String>,
}

static KNOWN: LazyLock<RwLock<Known>> = LazyLock::new(RwLock::default);

/// Set when the matcher should be rebuilt; the builder thread waits on it.
static REBUILD: LazyLock<(Mutex<bool>, Condvar)> = LazyLock::new(|| {
    std::thread::Builder::new()
        .name("facio-redactor".to_owned())
        .spawn(rebuild_forever)
        .map_err(|e| eprintln!("cannot start the log redactor's builder: {e}"))
        .ok();
    (Mutex::new(false), Condvar::new())
});

/// Values shorter than this are not redacted from logs: a short credential (a PIN,
/// a word like `error`) would otherwise take ordinary words out of every tenant's logs.
const MIN_LOG_CHARS: usize = 8;

/// Most forms kept; past it new values are not added (and that is logged).
const MAX_FORMS: usize = 100_000;

/// Adds `value` (and its encodings) to the known secrets. Cheap: the matcher is
/// rebuilt in the background, and until then the new forms are matched on their own.
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
    {
        let mut known = KNOWN
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.forms.len() >= MAX_FORMS {
            drop(known);
            tracing::warn!("too many secrets to redact from logs; a new one is not added");
            return;
        }
        for form in forms {
            if known.forms.insert(form.clone()) {
                known.pending.push(form);
            }
        }
    }
    let (dirty, wake) = &*REBUILD;
    *dirty
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    wake.notify_one();
}

/// The builder thread: whenever forms were added, builds a matcher of all of them
/// (off the request threads: a build over many long secrets takes a while) and
/// swaps it in, taking the forms it holds off the pending list.
fn rebuild_forever() {
    let (dirty, wake) = &*REBUILD;
    loop {
        {
            let mut asked = dirty
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while !*asked {
                asked = wake
                    .wait(asked)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            *asked = false;
        }
        let snapshot: Vec<String> = KNOWN
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .forms
            .iter()
            .cloned()
            .collect();
        // Leftmost-longest: a secret that contains another is replaced whole. A
        // contiguous NFA builds in time linear in the secrets (a DFA can take
        // seconds over many long ones) and still matches in one pass.
        let built = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&snapshot);
        match built {
            Ok(matcher) => {
                let held: HashSet<&String> = snapshot.iter().collect();
                let mut known = KNOWN
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                known.matcher = Some(matcher);
                known.pending.retain(|form| !held.contains(form));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot build the log redactor; keeping the old one")
            }
        }
    }
}

/// `text` with every known secret replaced by `[REDACTED]`, or `None` when it holds
/// none (the common case, which allocates nothing).
pub fn redact_known(text: &str) -> Option<String> {
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Every byte of every occurrence, from the matcher and the pending forms alike,
    // is covered: overlapping occurrences become one `[REDACTED]`. One pass over the
    // line; nothing is allocated when it holds no secret.
    let mut spans: Vec<(usize, usize)> = known
        .matcher
        .iter()
        .flat_map(|m| m.find_iter(text).map(|found| (found.start(), found.end())))
        .collect();
    for form in &known.pending {
        spans.extend(
            text.match_indices(form.as_str())
                .map(|(at, f)| (at, at + f.len())),
        );
    }
    if spans.is_empty() {
        return None;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut iter = spans.into_iter().peekable();
    while let Some((start, mut end)) = iter.next() {
        while let Some(&(next, next_end)) = iter.peek() {
            if next > end {
                break;
            }
            end = end.max(next_end);
            iter.next();
        }
        out.push_str(&text[copied..start]);
        out.push_str("[REDACTED]");
        copied = end;
    }
    out.push_str(&text[copied..]);
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
        // Overlapping secrets, one inside the other: nothing of either is left.
        remember("overlap-secret-AAAA");
        remember("prefix-overlap-secret-AAAA-suffix");
        assert_eq!(
            redact_known("x prefix-overlap-secret-AAAA-suffix y overlap-secret-AAAA z").as_deref(),
            Some("x [REDACTED] y [REDACTED] z")
        );
        remember("error");
        assert_eq!(
            redact_known("an error here"),
            None,
            "too short to take out of logs"
        );
    }
}
