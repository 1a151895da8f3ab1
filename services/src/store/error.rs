//! Store failures.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The URL as given; shown only redacted.
    #[error(
        "unsupported storage url {}: expected sqlite://PATH, sqlite::memory:, \
         postgres://USER:PASSWORD@HOST/DB or postgresql://…",
        super::redact_url(.0)
    )]
    UnsupportedUrl(String),
}
