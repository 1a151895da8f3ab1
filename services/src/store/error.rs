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
    /// A timeout was asked for a review whose deadline has not passed by the
    /// database's clock (a node's clock ran ahead): it stays pending.
    #[error("review {0} has not reached its deadline yet")]
    NotExpired(String),
    /// The write queue is full: the caller may try again (never silently lost).
    #[error("store busy: {0}")]
    Busy(String),
    /// The batch holding this write did not commit: nothing of it was written.
    #[error("store write failed: {0}")]
    CommitFailed(String),
    /// The session's lease has moved to a newer epoch (another owner took it): this
    /// writer is stale and wrote nothing.
    #[error("session {session} is owned at a newer epoch than {epoch}: this writer is fenced off")]
    Fenced { session: String, epoch: i64 },
    /// The session's lease is held by another live owner.
    #[error("session {session} is owned by node {owner} until {until}")]
    LeaseHeld {
        session: String,
        owner: String,
        until: String,
    },
    /// The URL as given; shown only redacted.
    #[error(
        "unsupported storage url {}: expected sqlite://PATH, sqlite::memory:, \
         postgres://USER:PASSWORD@HOST/DB or postgresql://…",
        super::redact_url(.0)
    )]
    UnsupportedUrl(String),
}
