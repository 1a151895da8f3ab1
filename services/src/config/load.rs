//! Loading, interpolation, env overrides, validation (placeholder).

use std::path::{Path, PathBuf};

use super::Config;

/// Why a config cannot be used; names the key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid config at `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

/// `$FACIO_CONFIG` or `<data dir>/config.json`.
pub fn default_config_path() -> PathBuf {
    default_data_dir().join("config.json")
}

/// `$FACIO_DATA_DIR` or `$HOME/.facio`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("FACIO_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".facio")))
        .unwrap_or_else(|| PathBuf::from(".facio"))
}

impl Config {
    /// Loads `path` (or the default path; a missing default file means all defaults),
    /// then applies `FACIO_` overrides and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let _ = path;
        Ok(Config::default())
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

    /// The storage URL (`storage.url`, else `sqlite://<data dir>/facio.db`).
    pub fn storage_url(&self) -> String {
        self.storage
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir().join("facio.db").display()))
    }
}
