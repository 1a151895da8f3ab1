//! `storage`: where state lives.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// `storage` area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Database URL. Default `sqlite://<data dir>/facio.db` (embedded, zero setup);
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (or `postgresql://`) for a database
    /// several nodes share. The password is never logged.
    pub url: Option<String>,
    /// Directory for state (database, default workspace). Default `~/.facio`
    /// (override with `FACIO_DATA_DIR`).
    pub data_dir: Option<std::path::PathBuf>,
    /// Most connections a node opens to PostgreSQL (its pool size). Default 10. SQLite
    /// keeps its own pool (one writer at a time).
    pub max_connections: Option<NonZeroU32>,
}

impl StorageConfig {
    /// The default pool size.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

    /// `maxConnections`, else the default.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
            .map_or(Self::DEFAULT_MAX_CONNECTIONS, NonZeroU32::get)
    }
}
