//! SQLite store (placeholder).

/// The embedded store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Opens (creating the file and parent directories) and migrates `url`
    /// (`sqlite://PATH` or `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self, super::StoreError> {
        let pool = sqlx::SqlitePool::connect(url).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }
}
