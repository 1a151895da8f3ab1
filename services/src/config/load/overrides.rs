//! `FACIO_` environment overrides, applied over the file: `FACIO_API__PORT=9000` sets
//! `api.port`. `__` separates keys, each segment is taken as snake_case
//! (`MAX_TOOL_ITERATIONS` → `maxToolIterations`), and names the user chose (provider
//! names) are taken lowercase as given. Only variables with `__` are overrides, so
//! `FACIO_DATA_DIR` and `FACIO_CONFIG` are not.
//!
//! A text field takes the value verbatim (an API key of digits stays a string); any
//! other field takes it as JSON when it parses (numbers, booleans, arrays, objects),
//! else as a string, which the typed fields then accept or reject.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::keypath;
use super::keys::{normalize, to_camel};
use super::schema::{Schema, Shape, holds_user_keys};

const PREFIX: &str = "FACIO_";

/// An override that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OverrideError {
    pub var: String,
    pub key: String,
    pub reason: String,
}

/// Applies every override in `env` to `config`; returns overridden key path → variable.
pub(super) fn apply(
    config: &mut Value,
    env: &BTreeMap<String, String>,
    schema: &Schema,
) -> Result<BTreeMap<String, String>, OverrideError> {
    let mut applied = BTreeMap::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(PREFIX).filter(|rest| rest.contains("__")) else {
            continue;
        };
        let fail = |key: String, reason: String| OverrideError {
            var: var.clone(),
            key,
            reason,
        };
        let path = key_path(rest);
        let key = keypath::join_all(&path);
        if path.iter().any(String::is_empty) {
            return Err(fail(
                key,
                "empty key segment (check the `__` separators)".into(),
            ));
        }
        let shape = schema
            .shape_at(&path)
            .map_err(|unknown| fail(unknown.key, unknown.reason))?;
        let value = if shape.is_text() {
            Value::String(raw.clone())
        } else {
            let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
            let mut at = path.clone();
            let parsed = normalize(parsed, &mut at).map_err(|dup| fail(dup.key, dup.reason))?;
            if matches!(shape, Shape::Like(Value::Object(_))) {
                schema
                    .check(&parsed, &mut at)
                    .map_err(|unknown| fail(unknown.key, unknown.reason))?;
            }
            parsed
        };
        set(config, &path, value).map_err(|reason| fail(key.clone(), reason))?;
        applied.insert(key, var.clone());
    }
    Ok(applied)
}

/// `AGENTS__DEFAULTS__MAX_TOOL_ITERATIONS` → `agents.defaults.maxToolIterations`.
fn key_path(rest: &str) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    for segment in rest.split("__") {
        let lower = segment.to_ascii_lowercase();
        let canonical = if holds_user_keys(&path) {
            lower
        } else {
            to_camel(&lower)
        };
        path.push(canonical);
    }
    path
}

/// Sets `path` in `config`, creating objects on the way.
fn set(config: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("no key given".into());
    };
    let mut node = config;
    for (depth, segment) in parents.iter().enumerate() {
        node = object_at(node, &path[..depth])?
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    object_at(node, parents)?.insert(last.clone(), value);
    Ok(())
}

/// The object `node` holds, turning an absent (`null`) one into an empty object.
fn object_at<'a>(
    node: &'a mut Value,
    path: &[String],
) -> Result<&'a mut Map<String, Value>, String> {
    if node.is_null() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut().ok_or_else(|| {
        format!(
            "{} in the file is not an object, so no key can be set below it",
            keypath::join_all(path)
        )
    })
}
