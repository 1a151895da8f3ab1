//! `${VAR}` in string values, so secrets stay in the environment rather than in the
//! file. `${VAR:-default}` falls back when `VAR` is unset or empty (as in a shell);
//! `$${` is a literal `${`. `${credentials.KEY}` is not a variable: it is kept for the
//! node to resolve from the credential vault. Substituted values are never logged; the loader keeps
//! them only to hide them from error messages.

use std::collections::BTreeMap;

use serde_json::Value;

use super::keypath;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExpandError {
    /// `${VAR}` without a default and `VAR` is not set.
    Missing { key: String, var: String },
    /// Not a well-formed `${...}`.
    Malformed { key: String, reason: String },
}

/// Expands every string value in `value` (found at `key`), recording the key path and
/// the expanded text of each string that took a variable's value.
pub(super) fn interpolate(
    value: &mut Value,
    key: &str,
    env: &BTreeMap<String, String>,
    substituted: &mut BTreeMap<String, String>,
) -> Result<(), ExpandError> {
    match value {
        Value::String(text) => {
            if let Some((expanded, used_variable)) = expand(text, env, key)? {
                if used_variable {
                    substituted.insert(key.to_owned(), expanded.clone());
                }
                *text = expanded;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &keypath::index(key, i), env, substituted)?;
            }
        }
        Value::Object(map) => {
            for (name, child) in map.iter_mut() {
                interpolate(child, &keypath::child(key, name), env, substituted)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// The expanded text and whether a variable was read, or `None` when `text` has
/// nothing to expand.
fn expand(
    text: &str,
    env: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<(String, bool)>, ExpandError> {
    if !text.contains('$') {
        return Ok(None);
    }
    let malformed = |reason: String| ExpandError::Malformed {
        key: key.to_owned(),
        reason,
    };
    let mut out = String::with_capacity(text.len());
    let mut used_variable = false;
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix(CREDENTIAL) {
            // Vault references stay as written; the node resolves them where the value
            // is used (provider headers), from the credential store.
            out.push_str(CREDENTIAL);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(close) = tail.find('}') else {
                return Err(malformed(
                    "unterminated ${ (write $${ for a literal ${)".into(),
                ));
            };
            let (name, default) = match tail[..close].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&tail[..close], None),
            };
            if !is_variable_name(name) {
                return Err(malformed(format!(
                    "${{{name}}} is not a variable name (letters, digits and _, not starting \
                     with a digit)"
                )));
            }
            let set = env.get(name).filter(|value| !value.is_empty());
            match (set, default) {
                (Some(value), _) => out.push_str(value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(ExpandError::Missing {
                        key: key.to_owned(),
                        var: name.to_owned(),
                    });
                }
            }
            used_variable = true;
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Some((out, used_variable)))
}

/// How a `${credentials.KEY}` vault reference starts.
const CREDENTIAL: &str = "${credentials.";

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
