//! snake_case keys are accepted everywhere a field name is expected: they are turned
//! into the canonical camelCase before anything else looks at them. Keys that are
//! user data (provider names, header names) are kept exactly as written.

use serde_json::{Map, Value};

use super::keypath;
use super::schema::holds_user_keys;

/// Two spellings of one key in the same object (`maxTokens` and `max_tokens`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DuplicateKey {
    pub key: String,
    pub reason: String,
}

/// `max_tool_iterations` → `maxToolIterations`; camelCase is left alone.
pub(super) fn to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper_next = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites field names in `value` (found at `path`) to camelCase, recursively.
pub(super) fn normalize(value: Value, path: &mut Vec<String>) -> Result<Value, DuplicateKey> {
    match value {
        Value::Object(map) => {
            let user_keys = holds_user_keys(path);
            let mut out = Map::with_capacity(map.len());
            for (key, child) in map {
                let canonical = if user_keys {
                    key.clone()
                } else {
                    to_camel(&key)
                };
                path.push(canonical.clone());
                let child = normalize(child, path)?;
                if out.contains_key(&canonical) {
                    return Err(DuplicateKey {
                        key: keypath::join_all(path),
                        reason: format!("given twice (as {key:?} and another spelling); keep one"),
                    });
                }
                path.pop();
                out.insert(canonical, child);
            }
            Ok(Value::Object(out))
        }
        // Arrays hold values (deny patterns, host names), never objects with fields.
        other => Ok(other),
    }
}
