//! The PostgreSQL store: the same tables and semantics as SQLite's, for nodes that
//! share one database.
//!
//! Every statement runs inside a transaction that first sets its tenant
//! (`SELECT set_config('facio.tenant', $1, true)`, transaction-local), which the
//! tables' row-level security policies require (see
//! `migrations/postgres/0001_sessions.sql`); the four cross-tenant reads set
//! `facio.system` instead. Steps commit concurrently from the pool, without a
//! process-wide writer lock: where a step reads a head and appends after it, it first
//! locks that head inside its transaction — the session's row for message sequence
//! numbers, the session chain's head row for the audit log — so concurrent writers of
//! one session queue there instead of forking the sequence, and writers of different
//! sessions do not wait on one another.

mod audit;
mod change;
mod credentials;
mod leases;
mod reviews;
mod runs;
mod sessions;
mod steps;
mod tenants;
mod tokens;
mod usage;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sqlite::{now, parse_id};
use super::{StoreCounts, StoreError, StoreMetrics};
use crate::domain::TenantId;

/// The PostgreSQL schema, kept in step with SQLite's (same numbered files).
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// A transaction on the pool.
type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// The shared store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: sqlx::PgPool,
    counters: Arc<Counters>,
    /// Seals the audit log once set (see [`crate::store::AuditKey`]).
    audit_key: Arc<std::sync::OnceLock<crate::store::AuditKey>>,
}

/// Commits and reads since the store was opened.
#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    reads: AtomicU64,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://` or `postgresql://`) with a pool of at most
    /// `max_connections`, and migrates. The role must own its tables and be neither a
    /// superuser nor BYPASSRLS, or row-level security does not bind it.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let store = Self::connect_unmigrated(url, max_connections).await?;
        MIGRATOR.run(&store.pool).await?;
        store.warn_unless_bound_by_row_security().await?;
        Ok(store)
    }

    /// Says so when the role is a superuser or BYPASSRLS: row-level security then
    /// does not bind the store, and only its own tenant filters keep tenants apart.
    async fn warn_unless_bound_by_row_security(&self) -> Result<(), StoreError> {
        let (user, bypasses): (String, bool) = sqlx::query_as(
            "SELECT rolname::TEXT, rolsuper OR rolbypassrls FROM pg_roles \
             WHERE rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        if bypasses {
            tracing::warn!(
                role = %user,
                "the PostgreSQL role is a superuser or BYPASSRLS, so row-level security \
                 does not apply; run Facio as an ordinary role that owns its database"
            );
        }
        Ok(())
    }

    /// Connects without migrating (`facio migrate` reports what it applies).
    pub(super) async fn connect_unmigrated(
        url: &str,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("facio");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            counters: Arc::default(),
            audit_key: Arc::default(),
        })
    }

    /// The connection pool (for tests and tooling that inspect the database; a query
    /// on it sees no tenant's rows until it sets one).
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Begins a transaction scoped to `tenant`.
    async fn begin_tenant(&self, tenant: &TenantId) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('facio.tenant', $1, true)")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A read-only transaction on one snapshot of `tenant`'s rows (counted): every
    /// statement in it sees the same committed state.
    async fn snapshot(&self, tenant: &TenantId) -> Result<Tx, StoreError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT set_config('facio.tenant', $1, true)")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A transaction for one read of `tenant`'s rows (counted).
    async fn read(&self, tenant: &TenantId) -> Result<Tx, StoreError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.begin_tenant(tenant).await
    }

    /// A transaction for a write of `tenant`'s rows; [`Self::commit`] counts it.
    async fn write(&self, tenant: &TenantId) -> Result<Tx, StoreError> {
        self.begin_tenant(tenant).await
    }

    /// Begins a step of a session's log. Every step starts here: inside its own
    /// transaction the writer's epoch must still be the session's (the lease row is
    /// locked for the rest of the step, so a takeover waits for it or fences it).
    async fn begin_step(&self, run: &super::RunScope) -> Result<Tx, StoreError> {
        let mut tx = self.write(&run.tenant).await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT epoch FROM session_leases WHERE tenant_id = $1 AND session_key = $2 \
             FOR SHARE",
        )
        .bind(run.tenant.as_str())
        .bind(run.session_key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if current != Some(run.epoch.get()) {
            return Err(StoreError::Fenced {
                session: run.session_key.to_string(),
                epoch: run.epoch.get(),
            });
        }
        Ok(tx)
    }

    /// The audit key, when set.
    fn audit_key(&self) -> Option<crate::store::AuditKey> {
        self.audit_key.get().cloned()
    }

    /// A write across tenants on the lease table only (the node's heartbeat),
    /// admitted by its `session_leases_node` policy.
    async fn write_leases_of_node(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('facio.system', 'leases', true)")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A read across tenants (counted): admitted by the `*_system_read` policies, for
    /// SELECT only, on the tables that have one.
    async fn read_all_tenants(&self) -> Result<Tx, StoreError> {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('facio.system', 'read', true)")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Commits a write (counted).
    async fn commit(&self, tx: Tx) -> Result<(), StoreError> {
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        let began = std::time::Instant::now();
        let committed = tx.commit().await;
        crate::telemetry::metrics().store_commit.record(
            began.elapsed().as_secs_f64(),
            &[opentelemetry::KeyValue::new("facio.store", "postgres")],
        );
        committed?;
        Ok(())
    }
}

/// Ends a read transaction (nothing to keep; committing is cheapest).
async fn done(tx: Tx) -> Result<(), StoreError> {
    tx.commit().await?;
    Ok(())
}

impl StoreMetrics for PostgresStore {
    fn counts(&self) -> StoreCounts {
        StoreCounts {
            commits: self.counters.commits.load(Ordering::Relaxed),
            // Each write is its own transaction here: steps commit concurrently.
            writes: self.counters.commits.load(Ordering::Relaxed),
            reads: self.counters.reads.load(Ordering::Relaxed),
            queued: 0,
        }
    }
}

/// Turns a foreign key violation (the run a row points to is missing) into not found.
fn missing_run(run: &impl std::fmt::Display) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| match e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(format!("run {run}"))
        }
        other => other.into(),
    }
}

/// A non-negative count column.
fn unsigned(column: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative")))
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
