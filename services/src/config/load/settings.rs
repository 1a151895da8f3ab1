//! `settings.json`: node settings changed through the management API
//! (`PATCH /api/v1/settings`), kept beside `config.json` rather than rewriting it, so
//! the operator's file, its comments and its `${VAR}` references stay as written. The
//! loader lays it over `config.json`; `FACIO_*__*` overrides still win over both. The
//! node reads its config once at start, so every change here takes effect on restart.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{ConfigError, Loader, keypath, keys, process_env};
use crate::config::Config;

/// The file's name, in the config file's directory.
pub const SETTINGS_FILE: &str = "settings.json";

/// The keys (and the subtrees under them) the API may change: how the agent thinks and
/// what it may spend. Everything else stays file-only: secrets (`auth`, `providers`,
/// `channels`, `api`; those go through `/credentials`), where state lives (`storage`,
/// `agents.defaults.workspace`) and the tools' confinement (`restrictToWorkspace`,
/// deny patterns, private hosts), which no remote caller may loosen for every tenant.
pub const CHANGEABLE_KEYS: [&str; 18] = [
    "agents.defaults.model",
    "agents.defaults.provider",
    "agents.defaults.maxToolIterations",
    "agents.defaults.maxTokens",
    "agents.defaults.temperature",
    "agents.defaults.contextWindowTokens",
    "agents.defaults.requestTimeoutS",
    "agents.defaults.maxRetries",
    "agents.defaults.idlePassivateS",
    "tools.timeoutS",
    "tools.exec.timeoutS",
    "tools.exec.maxOutputChars",
    "tools.web.fetchMaxChars",
    "tools.web.timeoutS",
    "limits",
    "pricing",
    "audit.maxFieldChars",
    "logging",
];

/// Why a settings change was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("the settings change must be a JSON object of config keys")]
    NotAnObject,
    #[error("{key}: not changeable through the API; it may change {}", CHANGEABLE_KEYS.join(", "))]
    NotChangeable { key: String },
    #[error(
        "{key}: settings changed through the API are taken literally; a ${{...}} reference \
         belongs in config.json"
    )]
    Reference { key: String },
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    #[error("cannot write {}: {reason}", .path.display())]
    Write { path: PathBuf, reason: String },
}

impl SettingsError {
    /// The key path the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::NotChangeable { key } | Self::Reference { key } => Some(key),
            Self::Invalid(ConfigError::Invalid { key, .. }) => Some(key),
            _ => None,
        }
    }
}

/// Where `settings.json` lives for a config file at `config_file`.
pub(super) fn settings_path(config_file: &Path) -> PathBuf {
    config_file.parent().map_or_else(
        || PathBuf::from(SETTINGS_FILE),
        |dir| dir.join(SETTINGS_FILE),
    )
}

/// The saved settings at `path`, if the file exists.
pub(super) fn read(path: &Path) -> Result<Option<Value>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => super::jsonc::parse(&text)
            .map(Some)
            .map_err(|err| ConfigError::Parse {
                path: path.to_path_buf(),
                line: err.line,
                column: err.column,
                reason: err.reason,
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
    }
}

/// Lays `over` onto `base`: objects merge key by key, anything else replaces. Records
/// the key path of every value taken from `over`.
pub(super) fn lay_over(base: &mut Value, over: Value, path: &str, taken: &mut Vec<String>) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                let child = keypath::child(path, &key);
                match base.get_mut(&key) {
                    Some(existing) => lay_over(existing, value, &child, taken),
                    None => {
                        base.insert(key, value);
                        taken.push(child);
                    }
                }
            }
        }
        (base, over) => {
            *base = over;
            taken.push(path.to_owned());
        }
    }
}

/// RFC 7386 merge patch: `null` removes a key, objects merge, anything else replaces.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(&key);
            } else {
                merge_patch(target.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

/// Refuses a value outside [`CHANGEABLE_KEYS`] (a `null` may remove any key, so what
/// an older rule let in can be taken out) and any `${` reference.
pub(super) fn check(value: &Value) -> Result<(), SettingsError> {
    if let Some(key) = not_changeable(value, "") {
        return Err(SettingsError::NotChangeable { key });
    }
    if let Some(key) = reference(value, "") {
        return Err(SettingsError::Reference { key });
    }
    Ok(())
}

/// The first key path that sets a value outside [`CHANGEABLE_KEYS`].
fn not_changeable(value: &Value, path: &str) -> Option<String> {
    let allowed = |key: &str| {
        CHANGEABLE_KEYS
            .iter()
            .any(|allowed| keypath::is_within(key, allowed))
    };
    match value {
        Value::Null => None,
        _ if !path.is_empty() && allowed(path) => None,
        // An object sets nothing itself (an empty one is what a removal leaves).
        Value::Object(map) => map
            .iter()
            .find_map(|(key, child)| not_changeable(child, &keypath::child(path, key))),
        _ => Some(path.to_owned()),
    }
}

/// The first key path whose string value holds a `${` reference.
fn reference(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) if text.contains("${") => Some(path.to_owned()),
        Value::Object(map) => map
            .iter()
            .find_map(|(key, child)| reference(child, &keypath::child(path, key))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| reference(child, &keypath::index(path, i))),
        _ => None,
    }
}

/// The key paths a patch sets or removes, at their deepest object level.
fn leaves(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        // An empty object changes nothing, so names no key.
        Value::Object(map) => {
            for (key, child) in map {
                leaves(child, &keypath::child(path, key), out);
            }
        }
        _ => out.push(path.to_owned()),
    }
}

impl Config {
    /// Where settings changed through the API are kept.
    pub fn settings_file(&self) -> PathBuf {
        self.settings_file
            .clone()
            .unwrap_or_else(|| settings_path(&super::default_config_path()))
    }

    /// The node settings changed through the API so far (`settings.json`), empty
    /// when there are none.
    pub fn saved_settings(&self) -> Result<Value, ConfigError> {
        Ok(read(&self.settings_file())?.unwrap_or_else(|| Value::Object(Map::new())))
    }

    /// Applies `patch` (a merge patch of config keys: `null` removes a saved value) to
    /// `settings.json` after checking that the whole config, with it, still loads.
    /// Returns the key paths changed; they take effect when the node restarts.
    pub fn change_settings(&self, patch: Value) -> Result<SettingsChange, SettingsError> {
        if !patch.is_object() {
            return Err(SettingsError::NotAnObject);
        }
        let patch =
            keys::normalize(patch, &mut Vec::new()).map_err(|dup| ConfigError::Invalid {
                file: None,
                key: dup.key,
                reason: dup.reason,
            })?;
        let mut changed = Vec::new();
        leaves(&patch, "", &mut changed);
        check(&patch)?;
        let _writing = WRITING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.settings_file();
        let mut saved = read(&path)?.unwrap_or_else(|| Value::Object(Map::new()));
        let reverse = reverse_patch(&patch, &saved);
        merge_patch(&mut saved, patch);
        let text = match &self.config_file {
            Some(file) => Some(
                std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
                    path: file.clone(),
                    reason: e.to_string(),
                })?,
            ),
            None => None,
        };
        // The whole config must load with the change, exactly as the next start will.
        let loader = Loader {
            file: self.config_file.clone(),
            settings: Some((path.clone(), saved.clone())),
            ..Loader::default()
        };
        loader.load(text.as_deref(), &process_env())?;
        write_atomically(&path, &saved)?;
        Ok(SettingsChange {
            keys: changed,
            path,
            reverse,
        })
    }
}

/// One change at a time: each reads, merges and writes the whole file.
static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A change saved to `settings.json`, which can be taken back (when recording it
/// failed, say).
#[derive(Debug)]
pub struct SettingsChange {
    /// The key paths changed.
    pub keys: Vec<String>,
    path: PathBuf,
    /// The merge patch that puts back what this change replaced, and nothing else.
    reverse: Value,
}

impl SettingsChange {
    /// Puts back the values this change replaced, leaving any later change to other
    /// keys in place.
    pub fn undo(self) -> Result<(), SettingsError> {
        let _writing = WRITING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut saved = read(&self.path)?.unwrap_or_else(|| Value::Object(Map::new()));
        merge_patch(&mut saved, self.reverse);
        write_atomically(&self.path, &saved)
    }
}

/// The merge patch undoing `patch` applied to `before`: each key it touches gets its
/// old value back (or `null`, removing it, when there was none).
fn reverse_patch(patch: &Value, before: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return before.clone();
    };
    let reverse = patch
        .iter()
        .map(|(key, change)| {
            let old = before.get(key).cloned().unwrap_or(Value::Null);
            let undo = match change {
                // Key by key, so keys set beside these since are left alone.
                Value::Object(inner) if !inner.is_empty() && old.is_object() => {
                    reverse_patch(change, &old)
                }
                Value::Object(inner) if !inner.is_empty() && old.is_null() => {
                    reverse_patch(change, &Value::Object(Map::new()))
                }
                _ => old,
            };
            (key.clone(), undo)
        })
        .collect();
    Value::Object(reverse)
}

fn write_atomically(path: &Path, value: &Value) -> Result<(), SettingsError> {
    let fail = |e: std::io::Error| SettingsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let text = serde_json::to_string_pretty(value).map_err(|e| SettingsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, format!("{text}\n")).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}
