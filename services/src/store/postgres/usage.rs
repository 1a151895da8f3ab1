//! Usage rows and their sums: aggregate queries over the `(tenant_id, at)` index.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use super::{PostgresStore, done, now, signed, unsigned};
use crate::domain::{RunId, TenantId};
use crate::store::{
    NewUsage, StoreError, UsageGroup, UsageGrouping, UsageRecord, UsageRepository, UsageTotals,
    UsageWindow,
};

// SUM over BIGINT is NUMERIC in PostgreSQL; the casts keep the sums integers.
const SUMS: &str = "COUNT(*) AS calls, COUNT(DISTINCT run_id) AS runs, \
     COALESCE(SUM(prompt_tokens), 0)::BIGINT AS prompt_tokens, \
     COALESCE(SUM(completion_tokens), 0)::BIGINT AS completion_tokens, \
     COALESCE(SUM(total_tokens), 0)::BIGINT AS total_tokens, \
     COALESCE(SUM(cost_micros), 0)::BIGINT AS cost_micros";

fn count(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    unsigned(column, row.try_get(column)?)
}

fn totals(row: &PgRow) -> Result<UsageTotals, StoreError> {
    Ok(UsageTotals {
        calls: count(row, "calls")?,
        runs: count(row, "runs")?,
        prompt_tokens: count(row, "prompt_tokens")?,
        completion_tokens: count(row, "completion_tokens")?,
        total_tokens: count(row, "total_tokens")?,
        cost_micros: count(row, "cost_micros")?,
    })
}

/// `<select> FROM usage WHERE` the tenant and window.
fn windowed(select: String, tenant: &TenantId, window: &UsageWindow) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new(select);
    query
        .push(" FROM usage WHERE tenant_id = ")
        .push_bind(tenant.as_str());
    if let Some(since) = window.since {
        query.push(" AND at >= ").push_bind(since);
    }
    if let Some(until) = window.until {
        query.push(" AND at < ").push_bind(until);
    }
    query
}

/// Inserts a usage row inside the caller's transaction.
pub(super) async fn record_usage_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    usage: &NewUsage,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO usage (tenant_id, run_id, session_key, model, prompt_tokens, \
         completion_tokens, total_tokens, cost_micros, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant.as_str())
    .bind(usage.run_id.as_str())
    .bind(usage.session_key.as_str())
    .bind(&usage.model)
    .bind(signed(usage.usage.prompt_tokens))
    .bind(signed(usage.usage.completion_tokens))
    .bind(signed(usage.usage.total_tokens))
    .bind(signed(usage.cost_micros))
    .bind(now())
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl UsageRepository for PostgresStore {
    async fn record_usage(&self, tenant: &TenantId, usage: &NewUsage) -> Result<(), StoreError> {
        let mut tx = self.write(tenant).await?;
        record_usage_in(&mut tx, tenant, usage).await?;
        self.commit(tx).await
    }

    async fn usage_totals(
        &self,
        tenant: &TenantId,
        window: &UsageWindow,
    ) -> Result<UsageTotals, StoreError> {
        let mut tx = self.read(tenant).await?;
        let row = windowed(format!("SELECT {SUMS}"), tenant, window)
            .build()
            .fetch_one(&mut *tx)
            .await?;
        done(tx).await?;
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
            UsageGrouping::Day => "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            UsageGrouping::Session => "session_key",
        };
        let mut query = windowed(
            format!("SELECT {key} COLLATE \"C\" AS group_key, {SUMS}"),
            tenant,
            window,
        );
        query.push(" GROUP BY 1 ORDER BY total_tokens DESC, group_key");
        let mut tx = self.read(tenant).await?;
        let rows = query.build().fetch_all(&mut *tx).await?;
        done(tx).await?;
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
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(
            "SELECT model, prompt_tokens, completion_tokens, total_tokens, cost_micros, at \
             FROM usage WHERE tenant_id = $1 AND run_id = $2 ORDER BY id",
        )
        .bind(tenant.as_str())
        .bind(run.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter()
            .map(|row| {
                Ok(UsageRecord {
                    model: row.try_get("model")?,
                    prompt_tokens: count(row, "prompt_tokens")?,
                    completion_tokens: count(row, "completion_tokens")?,
                    total_tokens: count(row, "total_tokens")?,
                    cost_micros: count(row, "cost_micros")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }
}
