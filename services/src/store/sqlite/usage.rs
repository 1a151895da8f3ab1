//! Usage rows and their sums. Sums are aggregate queries over the `(tenant_id, at)`
//! index; nothing is read row by row.

use async_trait::async_trait;
// Dynamic SQL here only splices a fixed grouping expression and fixed clauses; every
// value is bound.
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, now, parse_ts, ts};
use crate::domain::{RunId, TenantId};
use crate::store::{
    NewUsage, StoreError, UsageGroup, UsageGrouping, UsageRecord, UsageRepository, UsageTotals,
    UsageWindow,
};

const SUMS: &str = "COUNT(*) AS calls, COUNT(DISTINCT run_id) AS runs, \
     COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, \
     COALESCE(SUM(completion_tokens), 0) AS completion_tokens, \
     COALESCE(SUM(total_tokens), 0) AS total_tokens, \
     COALESCE(SUM(cost_micros), 0) AS cost_micros";

fn count(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative")))
}

fn totals(row: &sqlx::sqlite::SqliteRow) -> Result<UsageTotals, StoreError> {
    Ok(UsageTotals {
        calls: count(row, "calls")?,
        runs: count(row, "runs")?,
        prompt_tokens: count(row, "prompt_tokens")?,
        completion_tokens: count(row, "completion_tokens")?,
        total_tokens: count(row, "total_tokens")?,
        cost_micros: count(row, "cost_micros")?,
    })
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `WHERE` for a tenant and window; binds are tenant, since, until in that order.
fn window_clause(window: &UsageWindow) -> String {
    let mut clause = String::from("tenant_id = ?");
    if window.since.is_some() {
        clause.push_str(" AND at >= ?");
    }
    if window.until.is_some() {
        clause.push_str(" AND at < ?");
    }
    clause
}

fn bind_window<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    tenant: &'q TenantId,
    window: &UsageWindow,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    query = query.bind(tenant.as_str());
    if let Some(since) = &window.since {
        query = query.bind(ts(since));
    }
    if let Some(until) = &window.until {
        query = query.bind(ts(until));
    }
    query
}

/// Inserts a usage row on `conn` (a transaction, or the pool for one statement).
pub(super) async fn record_usage_in<'c, E>(
    conn: E,
    tenant: &TenantId,
    usage: &NewUsage,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO usage (tenant_id, run_id, session_key, model, prompt_tokens, \
         completion_tokens, total_tokens, cost_micros, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(tenant.as_str())
    .bind(usage.run_id.as_str())
    .bind(usage.session_key.as_str())
    .bind(&usage.model)
    .bind(signed(usage.usage.prompt_tokens))
    .bind(signed(usage.usage.completion_tokens))
    .bind(signed(usage.usage.total_tokens))
    .bind(signed(usage.cost_micros))
    .bind(ts(&now()))
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl UsageRepository for SqliteStore {
    async fn record_usage(&self, tenant: &TenantId, usage: &NewUsage) -> Result<(), StoreError> {
        let (t, u) = (tenant.clone(), usage.clone());
        self.write(move |conn| Box::pin(async move { record_usage_in(conn, &t, &u).await }))
            .await
    }

    async fn usage_totals(
        &self,
        tenant: &TenantId,
        window: &UsageWindow,
    ) -> Result<UsageTotals, StoreError> {
        let sql = format!("SELECT {SUMS} FROM usage WHERE {}", window_clause(window));
        let row = bind_window(sqlx::query(AssertSqlSafe(sql)), tenant, window)
            .fetch_one(self.read_pool())
            .await?;
        totals(&row)
    }

    async fn usage_groups(
        &self,
        tenant: &TenantId,
        window: &UsageWindow,
        grouping: UsageGrouping,
    ) -> Result<Vec<UsageGroup>, StoreError> {
        let key = match grouping {
            UsageGrouping::Model => "model",
            UsageGrouping::Day => "substr(at, 1, 10)",
            UsageGrouping::Session => "session_key",
        };
        let sql = format!(
            "SELECT {key} AS group_key, {SUMS} FROM usage WHERE {} \
             GROUP BY group_key ORDER BY total_tokens DESC, group_key",
            window_clause(window)
        );
        let rows = bind_window(sqlx::query(AssertSqlSafe(sql)), tenant, window)
            .fetch_all(self.read_pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UsageGroup {
                    key: row.try_get("group_key")?,
                    totals: totals(row)?,
                })
            })
            .collect()
    }

    async fn run_usage(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT model, prompt_tokens, completion_tokens, total_tokens, cost_micros, at \
             FROM usage WHERE tenant_id = ? AND run_id = ? ORDER BY id",
        )
        .bind(tenant.as_str())
        .bind(run.as_str())
        .fetch_all(self.read_pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UsageRecord {
                    model: row.try_get("model")?,
                    prompt_tokens: count(row, "prompt_tokens")?,
                    completion_tokens: count(row, "completion_tokens")?,
                    total_tokens: count(row, "total_tokens")?,
                    cost_micros: count(row, "cost_micros")?,
                    at: parse_ts("at", row.try_get("at")?)?,
                })
            })
            .collect()
    }
}
