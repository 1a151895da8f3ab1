//! Loading `config.json`: JSONC is parsed, snake_case keys become camelCase, unknown
//! keys are refused, `${VAR}` is substituted, `FACIO_*__*` overrides are applied, the
//! typed structs are filled, relative paths resolve next to the file, and the result
//! is validated. Every failure names the file, the key path and the reason.

mod error;
mod interpolate;
mod jsonc;
mod keypath;
mod keys;
mod overrides;
mod paths;
mod schema;
mod settings;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use error::ConfigError;
use interpolate::ExpandError;
use schema::Schema;
pub use settings::{CHANGEABLE_KEYS, SETTINGS_FILE, SettingsChange, SettingsError};

use super::Config;

/// `$FACIO_CONFIG`, else `<data dir>/config.json`.
pub fn default_config_path() -> PathBuf {
    config_path_from(&|name| std::env::var(name).ok())
}

/// `$FACIO_DATA_DIR`, else `$HOME/.facio`.
pub fn default_data_dir() -> PathBuf {
    data_dir_from(&|name| std::env::var(name).ok())
}

fn config_path_from(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    non_empty(env("FACIO_CONFIG"))
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir_from(env).join("config.json"))
}

fn data_dir_from(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    non_empty(env("FACIO_DATA_DIR"))
        .map(PathBuf::from)
        .or_else(|| non_empty(env("HOME")).map(|home| PathBuf::from(home).join(".facio")))
        .unwrap_or_else(|| PathBuf::from(".facio"))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

/// The process environment, skipping variables that are not valid UTF-8 (they can be
/// neither overrides nor interpolated into JSON strings).
fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

impl Config {
    /// Loads `path` (else `$FACIO_CONFIG`, else `<data dir>/config.json`), then applies
    /// `FACIO_` overrides and validates. A missing file is an error when it was named
    /// (argument or `FACIO_CONFIG`); a missing default file means all defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &process_env())
    }

    /// [`Config::load`] with the environment given explicitly (interpolation,
    /// overrides, `FACIO_CONFIG`, `FACIO_DATA_DIR`, `HOME`).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let lookup = |name: &str| env.get(name).cloned();
        let named = path
            .map(Path::to_path_buf)
            .or_else(|| non_empty(lookup("FACIO_CONFIG")).map(PathBuf::from));
        let explicit = named.is_some();
        let file = named.unwrap_or_else(|| config_path_from(&lookup));
        // Absolute so that `base_dir` and messages do not depend on how it was named.
        let file = std::path::absolute(&file).unwrap_or(file);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if explicit {
                    return Err(ConfigError::NotFound { path: file });
                }
                None
            }
            Err(err) => {
                return Err(ConfigError::Read {
                    path: file,
                    reason: err.to_string(),
                });
            }
        };
        let settings_file = settings::settings_path(&file);
        let saved = settings::read(&settings_file)?;
        let loader = Loader {
            file: text.is_some().then_some(file),
            settings: Some((settings_file, saved.unwrap_or(Value::Null))),
            ..Loader::default()
        };
        loader.load(text.as_deref(), env)
    }

    /// The data directory (`storage.dataDir`, else the default).
    pub fn data_dir(&self) -> PathBuf {
        self.storage
            .data_dir
            .clone()
            .unwrap_or_else(default_data_dir)
    }

    /// The agent workspace (`agents.defaults.workspace`, else `<data dir>/workspace`).
    pub fn workspace_dir(&self) -> PathBuf {
        self.agents
            .defaults
            .workspace
            .clone()
            .unwrap_or_else(|| self.data_dir().join("workspace"))
    }

    /// A tenant's workspace: [`Config::workspace_dir`] for the default tenant, and
    /// `<data dir>/tenants/<tenant>/workspace` for every other, beside (not inside) the
    /// default one, so no tenant's tools can reach another tenant's files.
    pub fn tenant_workspace_dir(&self, tenant: &crate::domain::TenantId) -> PathBuf {
        if *tenant == crate::domain::TenantId::default_tenant() {
            return self.workspace_dir();
        }
        self.data_dir()
            .join("tenants")
            .join(tenant.as_str())
            .join("workspace")
    }

    /// The storage URL (`storage.url`, else `sqlite://<data dir>/facio.db`).
    pub fn storage_url(&self) -> String {
        self.storage
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir().join("facio.db").display()))
    }
}

/// One load: where values came from, so errors can name the file or the variable and
/// never show a substituted value.
#[derive(Default)]
struct Loader {
    /// The file read, if any.
    file: Option<PathBuf>,
    /// Key path → substituted text (kept only to hide it from messages).
    substituted: BTreeMap<String, String>,
    /// Key path → the `FACIO_*__*` variable that set it.
    overridden: BTreeMap<String, String>,
    /// `settings.json` (its path, and its content or null when there is none).
    settings: Option<(PathBuf, Value)>,
    /// Key paths whose values came from `settings.json`.
    from_settings: Vec<String>,
}

impl Loader {
    fn load(
        mut self,
        text: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let schema = Schema::new();
        let mut value = match text {
            Some(text) => self.parse(text)?,
            None => Value::Object(serde_json::Map::new()),
        };
        value = keys::normalize(value, &mut Vec::new())
            .map_err(|dup| self.invalid(&dup.key, dup.reason))?;
        schema
            .check(&value, &mut Vec::new())
            .map_err(|unknown| self.invalid(&unknown.key, unknown.reason))?;
        interpolate::interpolate(&mut value, "", env, &mut self.substituted).map_err(|err| {
            match err {
                ExpandError::Missing { key, var } => ConfigError::MissingVariable {
                    file: self.file.clone(),
                    key,
                    var,
                },
                ExpandError::Malformed { key, reason } => self.invalid(&key, reason),
            }
        })?;
        // settings.json is laid over after `${VAR}` expansion: its values are taken
        // literally, so a remote settings change cannot pull the process environment in.
        let settings_file = self.settings.as_ref().map(|(path, _)| path.clone());
        if let Some((path, saved)) = self.settings.take()
            && !saved.is_null()
        {
            let in_settings = |key: String, reason: String| ConfigError::Invalid {
                file: Some(path.clone()),
                key,
                reason: error::one_line(&reason),
            };
            let saved = keys::normalize(saved, &mut Vec::new())
                .map_err(|dup| in_settings(dup.key, dup.reason))?;
            if !saved.is_object() {
                return Err(in_settings(String::new(), "must be a JSON object".into()));
            }
            schema
                .check(&saved, &mut Vec::new())
                .map_err(|unknown| in_settings(unknown.key, unknown.reason))?;
            // The file follows the API's rules, also when edited by hand.
            settings::check(&saved).map_err(|e| {
                let key = e.key().unwrap_or_default().to_owned();
                in_settings(key, e.to_string())
            })?;
            settings::lay_over(&mut value, saved, "", &mut self.from_settings);
            self.settings = Some((path, Value::Null));
        }
        self.overridden =
            overrides::apply(&mut value, env, &schema).map_err(|err| ConfigError::Override {
                var: err.var,
                key: err.key,
                reason: err.reason,
            })?;
        schema.clear_empty_optionals(&mut value, &mut Vec::new());

        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|err| {
            let key = err.path().to_string();
            let key = if key == "." { String::new() } else { key };
            self.invalid(&key, err.into_inner().to_string())
        })?;
        let base_dir = self
            .file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        let home = non_empty(env.get("HOME").cloned()).map(PathBuf::from);
        paths::resolve(&mut config, base_dir.as_deref(), home.as_deref());
        config.base_dir = base_dir;
        config.config_file = self.file.clone();
        config.settings_file = settings_file;
        // settings.json replaced what it sets: those values are literal, not the
        // environment's.
        config.from_environment = self
            .substituted
            .keys()
            .filter(|key| {
                !self
                    .from_settings
                    .iter()
                    .any(|set| keypath::is_within(key, set))
            })
            .chain(self.overridden.keys())
            .cloned()
            .collect();
        validate::validate(&config).map_err(|v| self.invalid(&v.key, v.reason))?;
        Ok(config)
    }

    fn parse(&self, text: &str) -> Result<Value, ConfigError> {
        jsonc::parse(text).map_err(|err| ConfigError::Parse {
            path: self.file.clone().unwrap_or_default(),
            line: err.line,
            column: err.column,
            reason: err.reason,
        })
    }

    /// The error for `key`: blamed on the override variable that set it, else on the
    /// file; a substituted value in the reason is hidden.
    fn invalid(&self, key: &str, reason: String) -> ConfigError {
        let mut reason = error::one_line(&reason);
        if let Some(secret) = self.substituted.get(key) {
            reason = reason.replace(&format!("{secret:?}"), "[substituted value]");
            if secret.len() >= 3 {
                reason = reason.replace(secret.as_str(), "[substituted value]");
            }
        }
        let key = if key.is_empty() { "(top level)" } else { key };
        let settings_file = self.settings.as_ref().map(|(path, _)| path).filter(|_| {
            self.from_settings
                .iter()
                .any(|taken| keypath::is_within(key, taken))
        });
        match self
            .overridden
            .iter()
            .find(|(path, _)| keypath::is_within(key, path))
        {
            Some((_, var)) => ConfigError::Override {
                var: var.clone(),
                key: key.to_owned(),
                reason,
            },
            None => ConfigError::Invalid {
                file: settings_file.or(self.file.as_ref()).cloned(),
                key: key.to_owned(),
                reason,
            },
        }
    }
}
