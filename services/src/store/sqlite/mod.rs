//! The embedded store: one SQLite file (or memory), zero setup.
//!
//! SQLite allows one writer at a time, so every write goes through one writer task
//! ([`writer`]): it takes all the writes waiting in its bounded queue and commits
//! them in one `BEGIN IMMEDIATE` transaction, each in its own savepoint (group
//! commit). A write is answered only after its batch committed. Reads go through the
//! pool concurrently (WAL).

mod audit;
mod change;
mod credentials;
mod leases;
mod reviews;
mod runs;
#[cfg(test)]
mod seal_tests;
mod sessions;
mod steps;
mod tenants;
#[cfg(test)]
mod tests;
mod tokens;
mod usage;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{StoreCounts, StoreError, StoreMetrics};

/// How many writes may wait for the writer before callers are told the store is
/// busy.
pub const WRITE_QUEUE: usize = 8192;

/// The embedded store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    writer: writer::Writer,
    counters: Arc<Counters>,
    /// Seals the audit log once set (see [`crate::store::AuditKey`]).
    audit_key: Arc<std::sync::OnceLock<crate::store::AuditKey>>,
}

/// Commits, writes and reads since the store was opened.
#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    steps: AtomicU64,
    reads: AtomicU64,
}

impl SqliteStore {
    /// The database file a `sqlite://PATH` or `sqlite:PATH` URL names; `None` for an
    /// in-memory database or a URL of another kind.
    pub fn file_path(url: &str) -> Option<std::path::PathBuf> {
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return None;
        }
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty()).then(|| std::path::PathBuf::from(path))
    }

    /// Opens (creating the file and parent directories) and migrates `url`
    /// (`sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_queue(url, WRITE_QUEUE).await
    }

    /// [`Self::connect`] with room for `queue` writes waiting for the writer.
    pub async fn connect_with_queue(url: &str, queue: usize) -> Result<Self, StoreError> {
        let memory = url == "sqlite::memory:" || url == "sqlite://:memory:";
        let mut options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            let path =
                Self::file_path(url).ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
            let path = path.as_path();
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Corrupt(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        options = options
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Every connection to `:memory:` is its own database, so memory gets exactly one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 8 })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(300))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let counters = Arc::<Counters>::default();
        Ok(Self {
            writer: writer::Writer::start(pool.clone(), queue, counters.clone()),
            pool,
            counters,
            audit_key: Arc::default(),
        })
    }

    /// Runs `work` on the writer's connection, atomically, in the next group commit;
    /// answers once that commit is on disk. A full queue answers
    /// [`StoreError::Busy`] at once: this is how new work is refused.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.writer.write(false, work).await
    }

    /// [`Self::write`] for a later step of a turn already taken in: it waits for room
    /// in a full queue instead of failing (its turn was acknowledged and must not be
    /// left half-recorded).
    async fn write_waiting<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.writer.write(true, work).await
    }

    /// Runs one statement as a write of its own; the rows it touched.
    async fn execute(
        &self,
        query: sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Box::pin(async move { Ok(query.execute(&mut *conn).await?.rows_affected()) })
        })
        .await
    }

    /// The audit key, when set.
    fn audit_key(&self) -> Option<crate::store::AuditKey> {
        self.audit_key.get().cloned()
    }

    /// The pool, for one read (counted).
    fn read_pool(&self) -> &sqlx::SqlitePool {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        &self.pool
    }

    /// The connection pool (for tests and tooling that inspect the database).
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }
}

impl StoreMetrics for SqliteStore {
    fn counts(&self) -> StoreCounts {
        StoreCounts {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.steps.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
            queued: self.writer.queued(),
        }
    }
}

/// Timestamps are stored as RFC 3339 text with microseconds: sortable as text, and
/// the same text the audit chain hashes.
pub(super) fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

fn truncate_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = at.timestamp_subsec_nanos();
    at - chrono::Duration::nanoseconds(i64::from(nanos % 1_000))
}

pub(super) fn ts(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn parse_ts(column: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{column} {text:?} is not a timestamp: {e}")))
}

pub(super) fn parse_opt_ts(
    column: &str,
    text: Option<String>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|t| parse_ts(column, &t)).transpose()
}

/// Parses a stored id, turning a bad value into a corruption error naming the column.
pub(super) fn parse_id<T: FromStr>(column: &str, text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    T::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column} {text:?}: {e}")))
}
