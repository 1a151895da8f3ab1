//! Which keys exist. The shape is taken from the serialized defaults of the typed
//! structs, so it cannot drift from them; the only hand-written knowledge is which
//! objects hold names the user chose (provider, header, tenant and model names).

use serde_json::{Map, Value};

use super::keypath;
use crate::config::{Config, ModelPrice, ProviderConfig};

/// The objects whose keys are names the user chose, by what their values are.
#[derive(Debug, Clone, Copy)]
enum UserMap {
    /// `providers.<name>`.
    Providers,
    /// `providers.<name>.extraHeaders.<header>`.
    Headers,
    /// `limits.tenants.<tenant>`: requests per minute.
    TenantRates,
    /// `pricing.<model>`.
    Prices,
    /// `tools.mcpServers.<server>`.
    McpServers,
    /// `channels.webhooks.<channel>`.
    Webhooks,
    /// `channels.telegram.<channel>`.
    Telegram,
}

fn user_map(path: &[String]) -> Option<UserMap> {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["providers"] => Some(UserMap::Providers),
        ["providers", _, "extraHeaders"]
        | ["telemetry", "headers"]
        | ["tools", "mcpServers", _, "env" | "headers"] => Some(UserMap::Headers),
        ["tools", "mcpServers"] => Some(UserMap::McpServers),
        ["channels", "webhooks"] => Some(UserMap::Webhooks),
        ["channels", "telegram"] => Some(UserMap::Telegram),
        ["limits", "tenants"] => Some(UserMap::TenantRates),
        ["pricing"] => Some(UserMap::Prices),
        _ => None,
    }
}

/// Whether the keys of the object at `path` (canonical segments) are user data: kept
/// as written, never converted to camelCase nor checked against field names.
pub(super) fn holds_user_keys(path: &[String]) -> bool {
    user_map(path).is_some()
}

/// What may stand at a key path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape<'a> {
    /// Shaped like this default value (objects have exactly these keys).
    Like(&'a Value),
    /// Any string (an entry of a user-keyed map of strings).
    AnyString,
}

impl Shape<'_> {
    /// Whether the value here is naturally text, so an override is taken verbatim
    /// rather than parsed as JSON. Every optional field is text (`null` by default).
    pub(super) fn is_text(&self) -> bool {
        match self {
            Shape::Like(value) => value.is_string() || value.is_null(),
            Shape::AnyString => true,
        }
    }

    /// Whether this is an optional field (its default is absent).
    pub(super) fn is_optional(&self) -> bool {
        matches!(self, Shape::Like(Value::Null))
    }
}

/// A key path that names no field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnknownKey {
    /// The full path up to and including the first unknown segment.
    pub key: String,
    pub reason: String,
}

/// The known shape of a config.
pub(super) struct Schema {
    root: Value,
    provider: Value,
    price: Value,
    count: Value,
    mcp_server: Value,
    webhook: Value,
    telegram: Value,
}

impl Schema {
    pub(super) fn new() -> Self {
        // Serializing these plain structs cannot fail (string keys, no custom
        // serializers); an empty shape would only make every key unknown.
        Self {
            root: serde_json::to_value(Config::default()).unwrap_or(Value::Null),
            provider: serde_json::to_value(ProviderConfig::default()).unwrap_or(Value::Null),
            price: serde_json::to_value(ModelPrice::default()).unwrap_or(Value::Null),
            count: Value::from(0),
            // Every field of `McpServerConfig`, as the shape of one server (its
            // serialization leaves out the empty ones).
            mcp_server: serde_json::json!({
                "type": "", "command": null, "args": [], "env": {}, "url": null,
                "headers": {}, "toolTimeoutS": null, "enabledTools": null,
                "riskTier": "", "enabled": true,
            }),
            webhook: serde_json::json!({
                "secret": "", "tenant": null, "allowFrom": [], "outboundUrl": null,
                "maxAttempts": 5, "retryBackoffMs": 500, "replayWindowS": 300,
            }),
            telegram: serde_json::json!({
                "botToken": "", "apiBase": "", "tenant": null, "allowFrom": [],
                "reviewers": [], "pollTimeoutS": 25,
            }),
        }
    }

    /// The shape at `path`, or the first segment that names nothing.
    pub(super) fn shape_at(&self, path: &[String]) -> Result<Shape<'_>, UnknownKey> {
        let mut shape = Shape::Like(&self.root);
        for (i, segment) in path.iter().enumerate() {
            let parent = &path[..i];
            if let Some(map) = user_map(parent) {
                shape = match map {
                    UserMap::Providers => Shape::Like(&self.provider),
                    UserMap::Headers => Shape::AnyString,
                    UserMap::TenantRates => Shape::Like(&self.count),
                    UserMap::Prices => Shape::Like(&self.price),
                    UserMap::McpServers => Shape::Like(&self.mcp_server),
                    UserMap::Webhooks => Shape::Like(&self.webhook),
                    UserMap::Telegram => Shape::Like(&self.telegram),
                };
                continue;
            }
            let unknown = |reason: String| UnknownKey {
                key: keypath::join_all(&path[..=i]),
                reason,
            };
            shape = match shape {
                Shape::Like(Value::Object(fields)) => match fields.get(segment) {
                    Some(value) => Shape::Like(value),
                    None => return Err(unknown(unknown_reason(segment, fields))),
                },
                _ => {
                    return Err(unknown(format!(
                        "{} holds a value, not an object with keys",
                        keypath::join_all(parent)
                    )));
                }
            };
        }
        Ok(shape)
    }

    /// Checks that every key in `value` (the object at `path`) names a field.
    pub(super) fn check(&self, value: &Value, path: &mut Vec<String>) -> Result<(), UnknownKey> {
        let Value::Object(map) = value else {
            return Ok(());
        };
        for (key, child) in map {
            path.push(key.clone());
            let shape = self.shape_at(path)?;
            if matches!(shape, Shape::Like(Value::Object(_))) {
                self.check(child, path)?;
            }
            path.pop();
        }
        Ok(())
    }

    /// Turns `""` in optional fields into `null`, so `"${KEY:-}"` means "not set".
    pub(super) fn clear_empty_optionals(&self, value: &mut Value, path: &mut Vec<String>) {
        let Value::Object(map) = value else {
            return;
        };
        for (key, child) in map.iter_mut() {
            path.push(key.clone());
            match self.shape_at(path) {
                Ok(shape) if shape.is_optional() && child.as_str() == Some("") => {
                    *child = Value::Null;
                }
                Ok(Shape::Like(Value::Object(_))) => self.clear_empty_optionals(child, path),
                _ => {}
            }
            path.pop();
        }
    }
}

fn unknown_reason(segment: &str, fields: &Map<String, Value>) -> String {
    let limit = (segment.chars().count() / 3).max(1);
    let best = fields
        .keys()
        .map(|field| (edit_distance(segment, field), field))
        .min();
    match best {
        Some((distance, field)) if distance <= limit => {
            format!("unknown field, did you mean {field}?")
        }
        _ => {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            format!("unknown field, expected one of: {}", known.join(", "))
        }
    }
}

/// Case-insensitive edit distance counting a swap of neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}
