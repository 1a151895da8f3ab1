//! Runs (one per turn) and their tool calls.

use async_trait::async_trait;
// Dynamic SQL here only splices constant column lists and fixed clauses; every
// value is bound.
use sqlx::{AssertSqlSafe, Row};

use super::sessions::ensure_in;
use super::{SqliteStore, now, parse_id, parse_opt_ts, parse_ts, ts};
use crate::domain::{RunId, SessionKey, TenantId, Usage};
use crate::store::{
    RunFilter, RunRecord, RunRepository, RunStatus, StoreError, ToolCallRecord, ToolCallStatus,
};

const RUN_COLUMNS: &str = "tenant_id, run_id, session_key, status, input, content, \
     prompt_tokens, completion_tokens, total_tokens, created_at, finished_at";

fn tokens(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is negative")))
}

fn run_row(row: &sqlx::sqlite::SqliteRow) -> Result<RunRecord, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(RunRecord {
        tenant: parse_id("tenant_id", row.try_get("tenant_id")?)?,
        run_id: parse_id("run_id", row.try_get("run_id")?)?,
        session_key: parse_id("session_key", row.try_get("session_key")?)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status {status:?}")))?,
        input: row.try_get("input")?,
        content: row.try_get("content")?,
        usage: Usage {
            prompt_tokens: tokens(row, "prompt_tokens")?,
            completion_tokens: tokens(row, "completion_tokens")?,
            total_tokens: tokens(row, "total_tokens")?,
        },
        created_at: parse_ts("created_at", row.try_get("created_at")?)?,
        finished_at: parse_opt_ts("finished_at", row.try_get("finished_at")?)?,
    })
}

fn tool_call_row(row: &sqlx::sqlite::SqliteRow) -> Result<ToolCallRecord, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(ToolCallRecord {
        run_id: parse_id("run_id", row.try_get("run_id")?)?,
        call_id: row.try_get("call_id")?,
        tool: row.try_get("tool")?,
        arguments: row.try_get("arguments")?,
        status: ToolCallStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown tool call status {status:?}")))?,
        result: row.try_get("result")?,
        started_at: parse_ts("started_at", row.try_get("started_at")?)?,
        finished_at: parse_opt_ts("finished_at", row.try_get("finished_at")?)?,
    })
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Creates the run (and its session if missing) inside the caller's transaction.
pub(super) async fn create_run_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    key: &SessionKey,
    run: &RunId,
    input: &str,
) -> Result<(), StoreError> {
    ensure_in(&mut *conn, tenant, key).await?;
    let inserted = sqlx::query(
        "INSERT INTO runs (tenant_id, run_id, session_key, status, input, created_at) \
         VALUES (?, ?, ?, 'running', ?, ?) ON CONFLICT (tenant_id, run_id) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(run.as_str())
    .bind(key.as_str())
    .bind(input)
    .bind(ts(&now()))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!("run {run} already exists")));
    }
    Ok(())
}

/// Sets a running run's final status, content and usage inside the caller's
/// transaction; a run that is not running is a conflict (or not found).
pub(super) async fn finish_run_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    run: &RunId,
    status: RunStatus,
    content: Option<&str>,
    usage: Usage,
) -> Result<(), StoreError> {
    if status == RunStatus::Running {
        return Err(StoreError::Conflict(format!(
            "run {run} cannot finish as running"
        )));
    }
    let updated = sqlx::query(
        "UPDATE runs SET status = ?, content = ?, prompt_tokens = ?, completion_tokens = ?, \
         total_tokens = ?, finished_at = ? \
         WHERE tenant_id = ? AND run_id = ? AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(content)
    .bind(as_i64(usage.prompt_tokens))
    .bind(as_i64(usage.completion_tokens))
    .bind(as_i64(usage.total_tokens))
    .bind(ts(&now()))
    .bind(tenant.as_str())
    .bind(run.as_str())
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        let found: Option<String> =
            sqlx::query_scalar("SELECT status FROM runs WHERE tenant_id = ? AND run_id = ?")
                .bind(tenant.as_str())
                .bind(run.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        return match found {
            None => Err(StoreError::NotFound(format!("run {run}"))),
            Some(status) => Err(StoreError::Conflict(format!(
                "run {run} is already {status}"
            ))),
        };
    }
    Ok(())
}

/// Moves a run from `from` to `to` inside the caller's transaction; false if it
/// was not `from`.
pub(super) async fn set_run_status_in<'c, E>(
    conn: E,
    tenant: &TenantId,
    run: &RunId,
    from: RunStatus,
    to: RunStatus,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let updated =
        sqlx::query("UPDATE runs SET status = ? WHERE tenant_id = ? AND run_id = ? AND status = ?")
            .bind(to.as_str())
            .bind(tenant.as_str())
            .bind(run.as_str())
            .bind(from.as_str())
            .execute(conn)
            .await?;
    Ok(updated.rows_affected() == 1)
}

/// Puts a tool call on record as started, inside the caller's transaction.
pub(super) async fn tool_call_started_in<'c, E>(
    conn: E,
    tenant: &TenantId,
    run: &RunId,
    call_id: &str,
    tool: &str,
    arguments: &str,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO tool_calls (tenant_id, run_id, call_id, tool, arguments, status, started_at) \
         VALUES (?, ?, ?, ?, ?, 'started', ?)",
    )
    .bind(tenant.as_str())
    .bind(run.as_str())
    .bind(call_id)
    .bind(tool)
    .bind(arguments)
    .bind(ts(&now()))
    .execute(conn)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(format!("run {run}"))
        }
        other => other.into(),
    })?;
    Ok(())
}

/// Settles the newest started call with `call_id`, inside the caller's transaction;
/// a call that is not in progress is a conflict.
pub(super) async fn tool_call_finished_in<'c, E>(
    conn: E,
    tenant: &TenantId,
    run: &RunId,
    call_id: &str,
    status: ToolCallStatus,
    result: &str,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let updated = sqlx::query(
        "UPDATE tool_calls SET status = ?, result = ?, finished_at = ? \
         WHERE id = (SELECT MAX(id) FROM tool_calls \
         WHERE tenant_id = ? AND run_id = ? AND call_id = ? AND status = 'started')",
    )
    .bind(status.as_str())
    .bind(result)
    .bind(ts(&now()))
    .bind(tenant.as_str())
    .bind(run.as_str())
    .bind(call_id)
    .execute(conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "tool call {call_id} of run {run} is not in progress"
        )));
    }
    Ok(())
}

impl SqliteStore {
    /// The tenant's runs in `status`, oldest first.
    async fn runs_in(
        &self,
        tenant: &TenantId,
        status: RunStatus,
        key: Option<&SessionKey>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        // Two statements, not `(? IS NULL OR session_key = ?)`: with that the planner
        // reads every run of the tenant in that status (all of a tenant's waiting
        // runs, to find one session's), instead of the session's own runs.
        let rows = match key {
            Some(key) => {
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = ? AND session_key = ? \
                     AND status = ? ORDER BY created_at"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(tenant.as_str())
                    .bind(key.as_str())
                    .bind(status.as_str())
                    .fetch_all(self.read_pool())
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = ? AND status = ? \
                     ORDER BY created_at"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(tenant.as_str())
                    .bind(status.as_str())
                    .fetch_all(self.read_pool())
                    .await?
            }
        };
        rows.iter().map(run_row).collect()
    }
}

#[async_trait]
impl RunRepository for SqliteStore {
    async fn create_run(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        run: &RunId,
        input: &str,
    ) -> Result<RunRecord, StoreError> {
        let (t, k, r, i) = (tenant.clone(), key.clone(), run.clone(), input.to_owned());
        self.write(move |conn| Box::pin(async move { create_run_in(conn, &t, &k, &r, &i).await }))
            .await?;
        self.get_run(tenant, run)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("run {run}")))
    }

    async fn list_runs(
        &self,
        tenant: &TenantId,
        filter: &RunFilter,
    ) -> Result<(Vec<RunRecord>, u64), StoreError> {
        // Only placeholders are put together here; every value is bound.
        let mut conditions = String::from("tenant_id = ?");
        if filter.session_key.is_some() {
            conditions.push_str(" AND session_key = ?");
        }
        if !filter.statuses.is_empty() {
            let marks = vec!["?"; filter.statuses.len()].join(", ");
            conditions.push_str(&format!(" AND status IN ({marks})"));
        }
        let count_sql = format!("SELECT COUNT(*) FROM runs WHERE {conditions}");
        let mut count =
            sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql)).bind(tenant.as_str());
        if let Some(key) = &filter.session_key {
            count = count.bind(key.as_str());
        }
        for status in &filter.statuses {
            count = count.bind(status.as_str());
        }
        let total = count.fetch_one(self.read_pool()).await?;
        if filter.before.is_some() {
            conditions.push_str(" AND run_id < ?");
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE {conditions} ORDER BY run_id DESC LIMIT ?"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
        if let Some(key) = &filter.session_key {
            query = query.bind(key.as_str());
        }
        for status in &filter.statuses {
            query = query.bind(status.as_str());
        }
        if let Some(before) = &filter.before {
            query = query.bind(before.as_str());
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(self.read_pool())
            .await?;
        let runs = rows.iter().map(run_row).collect::<Result<Vec<_>, _>>()?;
        Ok((runs, u64::try_from(total).unwrap_or_default()))
    }

    async fn get_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Option<RunRecord>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = ? AND run_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(run.as_str())
            .fetch_optional(self.read_pool())
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    async fn finish_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
        status: RunStatus,
        content: Option<&str>,
        usage: Usage,
    ) -> Result<(), StoreError> {
        let (t, r, c) = (tenant.clone(), run.clone(), content.map(str::to_owned));
        self.write(move |conn| {
            Box::pin(async move { finish_run_in(conn, &t, &r, status, c.as_deref(), usage).await })
        })
        .await
    }

    async fn set_run_status(
        &self,
        tenant: &TenantId,
        run: &RunId,
        from: RunStatus,
        to: RunStatus,
    ) -> Result<bool, StoreError> {
        let (t, r) = (tenant.clone(), run.clone());
        self.write(move |conn| {
            Box::pin(async move { set_run_status_in(conn, &t, &r, from, to).await })
        })
        .await
    }

    async fn running_runs(&self, tenant: &TenantId) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_in(tenant, RunStatus::Running, None).await
    }

    async fn queued_runs(&self, tenant: &TenantId) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_in(tenant, RunStatus::Queued, None).await
    }

    async fn awaiting_runs(
        &self,
        tenant: &TenantId,
        key: Option<&SessionKey>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_in(tenant, RunStatus::AwaitingReview, key).await
    }

    async fn resumable_runs(&self, tenant: &TenantId) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE tenant_id = ? AND status = 'awaiting_review' \
             AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.tenant_id = r.tenant_id \
             AND v.run_id = r.run_id AND v.status = 'pending') ORDER BY created_at"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(self.read_pool())
            .await?;
        rows.iter().map(run_row).collect()
    }

    async fn unfinished_runs(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = ? AND session_key = ? \
             AND status IN ('queued', 'running') ORDER BY created_at"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(key.as_str())
            .fetch_all(self.read_pool())
            .await?;
        rows.iter().map(run_row).collect()
    }

    async fn tool_call_started(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
        tool: &str,
        arguments: &str,
    ) -> Result<(), StoreError> {
        let (t, r) = (tenant.clone(), run.clone());
        let (c, n, a) = (call_id.to_owned(), tool.to_owned(), arguments.to_owned());
        self.write(move |conn| {
            Box::pin(async move { tool_call_started_in(conn, &t, &r, &c, &n, &a).await })
        })
        .await
    }

    async fn tool_call_finished(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
        status: ToolCallStatus,
        result: &str,
    ) -> Result<(), StoreError> {
        let (t, r) = (tenant.clone(), run.clone());
        let (c, text) = (call_id.to_owned(), result.to_owned());
        self.write(move |conn| {
            Box::pin(async move { tool_call_finished_in(conn, &t, &r, &c, status, &text).await })
        })
        .await
    }

    async fn tool_calls(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Vec<ToolCallRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, call_id, tool, arguments, status, result, started_at, finished_at \
             FROM tool_calls WHERE tenant_id = ? AND run_id = ? ORDER BY id",
        )
        .bind(tenant.as_str())
        .bind(run.as_str())
        .fetch_all(self.read_pool())
        .await?;
        rows.iter().map(tool_call_row).collect()
    }
}
