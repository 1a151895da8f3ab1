//! The backends a case runs on, each fresh: SQLite in memory, SQLite in a file, and
//! PostgreSQL when `FACIO_TEST_POSTGRES_URL` names a superuser URL (tests/run.sh
//! starts one). Each PostgreSQL case gets its own database owned by its own ordinary
//! role (no superuser, no BYPASSRLS), and the store connects as that role, so
//! row-level security binds it as it binds the product.

use std::sync::Arc;

use sqlx::Connection;

use crate::store::{PostgresStore, SqliteStore, Store};

/// Raw access to a backend's database, as the store's own role, beside the store.
pub(super) enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A fresh store and how to reach its database directly.
pub(super) struct Subject {
    pub store: Arc<dyn Store>,
    pub raw: Raw,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    File(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin: String, name: String },
}

impl Subject {
    pub async fn sqlite_memory() -> Subject {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        Subject {
            raw: Raw::Sqlite(store.pool().clone()),
            store: Arc::new(store),
            cleanup: Cleanup::Nothing,
        }
    }

    pub async fn sqlite_file() -> Subject {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("facio.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        Subject {
            raw: Raw::Sqlite(store.pool().clone()),
            store: Arc::new(store),
            cleanup: Cleanup::File(dir),
        }
    }

    /// None (after saying so) when no PostgreSQL is configured.
    pub async fn postgres() -> Option<Subject> {
        let Some(admin) = postgres_admin_url() else {
            eprintln!("skipped: FACIO_TEST_POSTGRES_URL is not set (tests/run.sh sets it)");
            return None;
        };
        let database = fresh_database(&admin).await;
        let store = PostgresStore::connect(&database.url, 16).await.unwrap();
        Some(Subject {
            raw: Raw::Postgres(store.pool().clone()),
            store: Arc::new(store),
            cleanup: Cleanup::Postgres {
                admin,
                name: database.name,
            },
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.raw, Raw::Postgres(_))
    }

    /// Runs `sql` directly, as the store's role: on PostgreSQL in a transaction that
    /// set `tenant` first (or none), as the store does.
    pub async fn execute(&self, tenant: Option<&str>, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(pool) => Ok(sqlx::query(sql).execute(pool).await?.rows_affected()),
            Raw::Postgres(pool) => {
                let mut tx = begin_as(pool, tenant).await?;
                let affected = sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(affected)
            }
        }
    }

    /// `SELECT COUNT(*) …` directly, as [`Self::execute`] runs statements.
    pub async fn count(&self, tenant: Option<&str>, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Raw::Postgres(pool) => {
                let mut tx = begin_as(pool, tenant).await.unwrap();
                let count = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                count
            }
        }
    }

    /// Drops what the case created (a PostgreSQL database and its role).
    pub async fn finish(self) {
        if let Raw::Postgres(pool) = &self.raw {
            pool.close().await;
        }
        if let Cleanup::Postgres { admin, name } = self.cleanup {
            drop_database(&admin, &name).await;
        }
    }
}

/// Drops a database [`fresh_database`] made, and its role.
pub(super) async fn drop_database(admin: &str, name: &str) {
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// A transaction on `pool` that set `tenant` first (or none), as the store begins.
async fn begin_as(
    pool: &sqlx::PgPool,
    tenant: Option<&str>,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Some(tenant) = tenant {
        sqlx::query("SELECT set_config('facio.tenant', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// The superuser URL tests may use, if any.
pub(super) fn postgres_admin_url() -> Option<String> {
    std::env::var("FACIO_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// A database made for one case.
pub(super) struct FreshDatabase {
    pub name: String,
    /// As its owner, an ordinary role, with its password.
    pub url: String,
}

/// Creates a uniquely named ordinary role and a database it owns, through the
/// superuser URL `admin`.
pub(super) async fn fresh_database(admin: &str) -> FreshDatabase {
    let name = format!("facio_c_{}", uuid::Uuid::now_v7().simple());
    let password = format!("pw{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
    for sql in [
        format!("CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'"),
        format!("CREATE DATABASE {name} OWNER {name}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
    FreshDatabase {
        url: with_login(admin, &name, &password, &name),
        name,
    }
}

/// `url` with another user, password and database.
fn with_login(url: &str, user: &str, password: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let query = tail.split_once('?').map(|(_, q)| format!("?{q}"));
    format!(
        "{scheme}://{user}:{password}@{host}/{database}{}",
        query.unwrap_or_default()
    )
}

/// Declares each case once, run on every backend: `case::sqlite_memory`,
/// `case::sqlite_file` and `case::postgres`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                use $crate::store::conformance::harness::Subject;

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite_memory() {
                    let subject = Subject::sqlite_memory().await;
                    super::$case(&subject).await;
                    subject.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite_file() {
                    let subject = Subject::sqlite_file().await;
                    super::$case(&subject).await;
                    subject.finish().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let Some(subject) = Subject::postgres().await else {
                        return;
                    };
                    super::$case(&subject).await;
                    subject.finish().await;
                }
            }
        )*
    };
}

pub(super) use conformance;
