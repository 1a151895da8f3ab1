//! Every secret value this process has handled — each credential the vault sealed or
//! opened, and the tokens and keys the config holds — kept as the forms the redactor
//! matches, so the log writer can take them out of any line, whatever code wrote it.
//! The tool-result redactor names the credential; this one, for logs, only says
//! `[REDACTED]`.

use std::sync::RwLock;

/// The forms of every known value, longest first (so a secret containing another is
/// replaced whole).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Most forms kept; a process that somehow handles more stops adding (and says so).
const MAX_FORMS: usize = 100_000;

/// Adds `value` (and its encodings) to the known secrets.
pub fn remember(value: &str) {
    let forms = super::secrets::forms(value);
    if forms.is_empty() {
        return;
    }
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = known.len();
    for form in forms {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    if known.len() == before {
        return;
    }
    if known.len() > MAX_FORMS {
        known.truncate(MAX_FORMS);
        tracing::warn!("too many secrets to redact from logs; newer ones are not redacted");
    }
    known.sort_by_key(|form| std::cmp::Reverse(form.len()));
}

/// `text` with every known secret replaced by `[REDACTED]`, or `None` when it holds
/// none (the common case, which allocates nothing).
pub fn redact_known(text: &str) -> Option<String> {
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let first = known.iter().position(|form| text.contains(form.as_str()))?;
    let mut out = text.to_owned();
    for form in &known[first..] {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), "[REDACTED]");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_values_and_their_encodings_are_redacted() {
        remember("log-secret-4242-value");
        let line = "token=log-secret-4242-value b64=bG9nLXNlY3JldC00MjQyLXZhbHVl other";
        assert_eq!(
            redact_known(line).as_deref(),
            Some("token=[REDACTED] b64=[REDACTED] other")
        );
        assert_eq!(redact_known("nothing to see here"), None);
        remember("ab");
        assert_eq!(redact_known("ab ab"), None, "too short to redact");
    }
}
