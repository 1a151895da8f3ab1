//! Opening the store a `storage.url` names: SQLite (`sqlite://PATH`, `sqlite:PATH`,
//! `sqlite::memory:`) or PostgreSQL (`postgres://…`, `postgresql://…`), migrated.
//! URLs are shown only through [`redact_url`], so a password never reaches a log or
//! an error.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use sqlx::migrate::Migrator;

use super::postgres::{MIGRATOR as POSTGRES_MIGRATOR, PostgresStore};
use super::{SqliteStore, Store, StoreError};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of `url`; [`StoreError::UnsupportedUrl`] for any other scheme.
    pub fn of(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Opens and migrates the store at `url`. `max_connections` sizes PostgreSQL's pool;
/// SQLite keeps its own (one writer at a time, a few readers).
pub async fn open_store(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match Backend::of(url)? {
        Backend::Sqlite => Arc::new(SqliteStore::connect(url).await?),
        Backend::Postgres => Arc::new(PostgresStore::connect(url, max_connections).await?),
    })
}

/// What [`migrate_store`] did: one line for `facio migrate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub backend: Backend,
    /// The URL, redacted.
    pub url: String,
    /// Migrations applied now: version and description, in order.
    pub applied: Vec<(i64, String)>,
    /// The newest migration the database has now.
    pub latest: Option<i64>,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let latest = self
            .latest
            .map_or_else(|| "none".to_owned(), |v| format!("{v:04}"));
        if self.applied.is_empty() {
            return write!(
                f,
                "{} {}: up to date (migration {latest}), nothing applied",
                self.backend.as_str(),
                self.url
            );
        }
        let names: Vec<String> = self
            .applied
            .iter()
            .map(|(version, description)| format!("{version:04} {description}"))
            .collect();
        write!(
            f,
            "{} {}: applied {} migration{} ({}), now at {latest}",
            self.backend.as_str(),
            self.url,
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
    }
}

/// Migrates the store at `url` and says which migrations that applied.
pub async fn migrate_store(url: &str, max_connections: u32) -> Result<MigrationReport, StoreError> {
    let backend = Backend::of(url)?;
    let (migrator, before, after) = match backend {
        Backend::Sqlite => {
            let before = match SqliteStore::file_path(url).filter(|path| path.exists()) {
                Some(path) => {
                    let options = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .read_only(true);
                    let pool = sqlx::SqlitePool::connect_with(options).await?;
                    let versions = sqlite_versions(&pool).await;
                    pool.close().await;
                    versions?
                }
                None => BTreeSet::new(),
            };
            let store = SqliteStore::connect(url).await?;
            let after = sqlite_versions(store.pool()).await?;
            store.pool().close().await;
            (&SQLITE_MIGRATOR, before, after)
        }
        Backend::Postgres => {
            let store = PostgresStore::connect_unmigrated(url, max_connections).await?;
            let before = postgres_versions(store.pool()).await?;
            POSTGRES_MIGRATOR.run(store.pool()).await?;
            let after = postgres_versions(store.pool()).await?;
            store.pool().close().await;
            (&POSTGRES_MIGRATOR, before, after)
        }
    };
    let applied = migrator
        .iter()
        .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    Ok(MigrationReport {
        backend,
        url: redact_url(url),
        applied,
        latest: after.last().copied(),
    })
}

async fn sqlite_versions(pool: &sqlx::SqlitePool) -> Result<BTreeSet<i64>, StoreError> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await?;
    if exists == 0 {
        return Ok(BTreeSet::new());
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(versions.into_iter().collect())
}

async fn postgres_versions(pool: &sqlx::PgPool) -> Result<BTreeSet<i64>, StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(BTreeSet::new());
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(versions.into_iter().collect())
}

/// `url` with its password (in the user info or a `password=` parameter) replaced by
/// `***`: `postgres://facio:***@db/facio`. Anything that is not a URL is returned
/// as it is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    // The user info ends at the last '@' before the path.
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let mut redacted = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                    format!("{name}=***")
                }
                _ => parameter.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        for (url, shown) in [
            (
                "postgres://facio:s3cr%40t@db.example:5432/facio",
                "postgres://facio:***@db.example:5432/facio",
            ),
            (
                "postgresql://facio:p@ss@db/facio?sslmode=require&password=x",
                "postgresql://facio:***@db/facio?sslmode=require&password=***",
            ),
            ("postgres://facio@db/facio", "postgres://facio@db/facio"),
            ("sqlite:///var/facio.db", "sqlite:///var/facio.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        let error = StoreError::UnsupportedUrl("mysql://root:hunter2@db/x".into()).to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("mysql://root:***@db/x"), "{error}");
    }

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(Backend::of("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://h/db").unwrap(), Backend::Postgres);
        assert_eq!(Backend::of("postgresql://h/db").unwrap(), Backend::Postgres);
        assert!(matches!(
            Backend::of("mysql://h/db"),
            Err(StoreError::UnsupportedUrl(_))
        ));
    }
}
