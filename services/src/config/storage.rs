//! `storage`: where state lives.

use serde::{Deserialize, Serialize};

/// `storage` area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Database URL. Default `sqlite://<data dir>/facio.db` (embedded, zero setup).
    pub url: Option<String>,
    /// Directory for state (database, default workspace). Default `~/.facio`
    /// (override with `FACIO_DATA_DIR`).
    pub data_dir: Option<std::path::PathBuf>,
}
