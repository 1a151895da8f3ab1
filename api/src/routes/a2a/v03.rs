//! The v0.3 shapes, for clients that send no `A2A-Version` header: the same objects
//! with `kind` discriminators, lower-case kebab states and roles, and parts tagged by
//! kind.

use serde_json::{Value, json};

/// `TASK_STATE_INPUT_REQUIRED` → `input-required`.
pub(super) fn state(v1: &str) -> String {
    v1.strip_prefix("TASK_STATE_")
        .unwrap_or(v1)
        .to_ascii_lowercase()
        .replace('_', "-")
}

fn role(v1: &Value) -> Value {
    match v1.as_str() {
        Some("ROLE_USER") => json!("user"),
        Some("ROLE_AGENT") => json!("agent"),
        _ => v1.clone(),
    }
}

fn parts(v1: &Value) -> Value {
    let converted: Vec<Value> = v1
        .as_array()
        .into_iter()
        .flatten()
        .map(|part| {
            let mut out = serde_json::Map::new();
            if let Some(text) = part.get("text") {
                out.insert("kind".into(), json!("text"));
                out.insert("text".into(), text.clone());
            } else if let Some(data) = part.get("data") {
                out.insert("kind".into(), json!("data"));
                out.insert("data".into(), data.clone());
            } else {
                out.insert("kind".into(), json!("file"));
                let mut file = serde_json::Map::new();
                if let Some(raw) = part.get("raw") {
                    file.insert("bytes".into(), raw.clone());
                }
                if let Some(url) = part.get("url") {
                    file.insert("uri".into(), url.clone());
                }
                if let Some(media) = part.get("mediaType") {
                    file.insert("mimeType".into(), media.clone());
                }
                out.insert("file".into(), Value::Object(file));
            }
            if let Some(metadata) = part.get("metadata") {
                out.insert("metadata".into(), metadata.clone());
            }
            Value::Object(out)
        })
        .collect();
    json!(converted)
}

pub(super) fn message(mut v1: Value) -> Value {
    if let Some(object) = v1.as_object_mut() {
        object.insert("kind".into(), json!("message"));
        if let Some(r) = object.get("role") {
            let r = role(r);
            object.insert("role".into(), r);
        }
        if let Some(p) = object.get("parts") {
            let p = parts(p);
            object.insert("parts".into(), p);
        }
    }
    v1
}

fn status(mut v1: Value) -> Value {
    if let Some(object) = v1.as_object_mut() {
        if let Some(s) = object.get("state").and_then(Value::as_str) {
            let s = state(s);
            object.insert("state".into(), json!(s));
        }
        if let Some(m) = object.remove("message") {
            object.insert("message".into(), message(m));
        }
    }
    v1
}

pub(super) fn task(mut v1: Value) -> Value {
    if let Some(object) = v1.as_object_mut() {
        object.insert("kind".into(), json!("task"));
        if let Some(s) = object.remove("status") {
            object.insert("status".into(), status(s));
        }
        if let Some(Value::Array(history)) = object.remove("history") {
            object.insert(
                "history".into(),
                json!(history.into_iter().map(message).collect::<Vec<_>>()),
            );
        }
        if let Some(Value::Array(artifacts)) = object.remove("artifacts") {
            let artifacts: Vec<Value> = artifacts
                .into_iter()
                .map(|mut a| {
                    if let Some(p) = a.get("parts") {
                        a["parts"] = parts(p);
                    }
                    a
                })
                .collect();
            object.insert("artifacts".into(), json!(artifacts));
        }
    }
    v1
}

/// A v1 stream event (`{"task"|"statusUpdate"|"artifactUpdate": …}`) as v0.3's.
pub(super) fn event(v1: Value, last: bool) -> Value {
    if let Some(t) = v1.get("task") {
        return task(t.clone());
    }
    if let Some(update) = v1.get("statusUpdate") {
        let mut out = update.clone();
        out["kind"] = json!("status-update");
        out["status"] = status(update["status"].clone());
        out["final"] = json!(last);
        return out;
    }
    if let Some(update) = v1.get("artifactUpdate") {
        let mut out = update.clone();
        out["kind"] = json!("artifact-update");
        if let Some(p) = update["artifact"].get("parts") {
            out["artifact"]["parts"] = parts(p);
        }
        return out;
    }
    v1
}
