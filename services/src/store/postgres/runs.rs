//! Runs (one per turn) and their tool calls.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::sessions::ensure_in;
use super::{PostgresStore, done, missing_run, now, parse_id, signed, unsigned};
use crate::domain::{RunId, SessionKey, TenantId, Usage};
use crate::store::{
    RunFilter, RunRecord, RunRepository, RunStatus, StoreError, ToolCallRecord, ToolCallStatus,
};

const RUN_SELECT: &str = "SELECT tenant_id, run_id, session_key, status, input, content, \
     prompt_tokens, completion_tokens, total_tokens, created_at, finished_at FROM runs";

fn tokens(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    unsigned(column, row.try_get(column)?)
}

fn run_row(row: &PgRow) -> Result<RunRecord, StoreError> {
    let status: &str = row.try_get("status")?;
    Ok(RunRecord {
        tenant: parse_id("tenant_id", row.try_get("tenant_id")?)?,
        run_id: parse_id("run_id", row.try_get("run_id")?)?,
        session_key: parse_id("session_key", row.try_get("session_key")?)?,
        status: RunStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status {status:?}")))?,
        input: row.try_get("input")?,
        content: row.try_get("content")?,
        usage: Usage {
            prompt_tokens: tokens(row, "prompt_tokens")?,
            completion_tokens: tokens(row, "completion_tokens")?,
            total_tokens: tokens(row, "total_tokens")?,
        },
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn tool_call_row(row: &PgRow) -> Result<ToolCallRecord, StoreError> {
    let status: &str = row.try_get("status")?;
    Ok(ToolCallRecord {
        run_id: parse_id("run_id", row.try_get("run_id")?)?,
        call_id: row.try_get("call_id")?,
        tool: row.try_get("tool")?,
        arguments: row.try_get("arguments")?,
        status: ToolCallStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown tool call status {status:?}")))?,
        result: row.try_get("result")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// Creates the run (and its session if missing) inside the caller's transaction.
pub(super) async fn create_run_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    key: &SessionKey,
    run: &RunId,
    input: &str,
) -> Result<(), StoreError> {
    ensure_in(&mut *conn, tenant, key).await?;
    let inserted = sqlx::query(
        "INSERT INTO runs (tenant_id, run_id, session_key, status, input, created_at) \
         VALUES ($1, $2, $3, 'running', $4, $5) ON CONFLICT (tenant_id, run_id) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(run.as_str())
    .bind(key.as_str())
    .bind(input)
    .bind(now())
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
    conn: &mut sqlx::PgConnection,
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
        "UPDATE runs SET status = $1, content = $2, prompt_tokens = $3, \
         completion_tokens = $4, total_tokens = $5, finished_at = $6 \
         WHERE tenant_id = $7 AND run_id = $8 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(content)
    .bind(signed(usage.prompt_tokens))
    .bind(signed(usage.completion_tokens))
    .bind(signed(usage.total_tokens))
    .bind(now())
    .bind(tenant.as_str())
    .bind(run.as_str())
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        let found: Option<String> =
            sqlx::query_scalar("SELECT status FROM runs WHERE tenant_id = $1 AND run_id = $2")
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
pub(super) async fn set_run_status_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    run: &RunId,
    from: RunStatus,
    to: RunStatus,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE runs SET status = $1 WHERE tenant_id = $2 AND run_id = $3 AND status = $4",
    )
    .bind(to.as_str())
    .bind(tenant.as_str())
    .bind(run.as_str())
    .bind(from.as_str())
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Puts a tool call on record as started, inside the caller's transaction.
pub(super) async fn tool_call_started_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    run: &RunId,
    call_id: &str,
    tool: &str,
    arguments: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tool_calls (tenant_id, run_id, call_id, tool, arguments, status, started_at) \
         VALUES ($1, $2, $3, $4, $5, 'started', $6)",
    )
    .bind(tenant.as_str())
    .bind(run.as_str())
    .bind(call_id)
    .bind(tool)
    .bind(arguments)
    .bind(now())
    .execute(conn)
    .await
    .map_err(missing_run(run))?;
    Ok(())
}

/// Settles the newest started call with `call_id`, inside the caller's transaction;
/// a call that is not in progress is a conflict.
pub(super) async fn tool_call_finished_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    run: &RunId,
    call_id: &str,
    status: ToolCallStatus,
    result: &str,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE tool_calls SET status = $1, result = $2, finished_at = $3 \
         WHERE id = (SELECT MAX(id) FROM tool_calls \
         WHERE tenant_id = $4 AND run_id = $5 AND call_id = $6 AND status = 'started') \
         AND status = 'started'",
    )
    .bind(status.as_str())
    .bind(result)
    .bind(now())
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

impl PostgresStore {
    /// The tenant's runs in `status`, oldest first.
    async fn runs_in(
        &self,
        tenant: &TenantId,
        status: RunStatus,
        key: Option<&SessionKey>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        // Two statements, not `($3 IS NULL OR session_key = $3)`, so one session's
        // lookup uses the session's index instead of reading the tenant's runs.
        let rows = match key {
            Some(key) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{RUN_SELECT} WHERE tenant_id = $1 AND session_key = $2 AND status = $3 \
                     ORDER BY created_at"
                )))
                .bind(tenant.as_str())
                .bind(key.as_str())
                .bind(status.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{RUN_SELECT} WHERE tenant_id = $1 AND status = $2 ORDER BY created_at"
                )))
                .bind(tenant.as_str())
                .bind(status.as_str())
                .fetch_all(&mut *tx)
                .await?
            }
        };
        done(tx).await?;
        rows.iter().map(run_row).collect()
    }
}

#[async_trait]
impl RunRepository for PostgresStore {
    async fn create_run(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
        run: &RunId,
        input: &str,
    ) -> Result<RunRecord, StoreError> {
        let mut tx = self.write(tenant).await?;
        create_run_in(&mut tx, tenant, key, run, input).await?;
        self.commit(tx).await?;
        self.get_run(tenant, run)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("run {run}")))
    }

    async fn list_runs(
        &self,
        tenant: &TenantId,
        filter: &RunFilter,
    ) -> Result<(Vec<RunRecord>, u64), StoreError> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let session = filter.session_key.as_ref().map(SessionKey::as_str);
        let before = filter.before.as_ref().map(RunId::as_str);
        // Each filter is a bound parameter that is NULL (or empty) when unused.
        let matching = "tenant_id = $1 AND ($2::text IS NULL OR session_key = $2) \
             AND (cardinality($3::text[]) = 0 OR status = ANY($3))";
        let mut tx = self.read(tenant).await?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM runs WHERE {matching}"
        )))
        .bind(tenant.as_str())
        .bind(session)
        .bind(&statuses)
        .fetch_one(&mut *tx)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RUN_SELECT} WHERE {matching} AND ($4::text IS NULL OR run_id < $4) \
             ORDER BY run_id DESC LIMIT $5"
        )))
        .bind(tenant.as_str())
        .bind(session)
        .bind(&statuses)
        .bind(before)
        .bind(i64::from(filter.limit))
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        let runs = rows.iter().map(run_row).collect::<Result<Vec<_>, _>>()?;
        Ok((runs, u64::try_from(total).unwrap_or_default()))
    }

    async fn get_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Option<RunRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RUN_SELECT} WHERE tenant_id = $1 AND run_id = $2"
        )))
        .bind(tenant.as_str())
        .bind(run.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        done(tx).await?;
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
        let mut tx = self.write(tenant).await?;
        finish_run_in(&mut tx, tenant, run, status, content, usage).await?;
        self.commit(tx).await
    }

    async fn set_run_status(
        &self,
        tenant: &TenantId,
        run: &RunId,
        from: RunStatus,
        to: RunStatus,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write(tenant).await?;
        let moved = set_run_status_in(&mut tx, tenant, run, from, to).await?;
        self.commit(tx).await?;
        Ok(moved)
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
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RUN_SELECT} r WHERE tenant_id = $1 AND status = 'awaiting_review' \
             AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.tenant_id = r.tenant_id \
             AND v.run_id = r.run_id AND v.status = 'pending') ORDER BY created_at"
        )))
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter().map(run_row).collect()
    }

    async fn unfinished_runs(
        &self,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{RUN_SELECT} WHERE tenant_id = $1 AND session_key = $2 \
             AND status IN ('queued', 'running') ORDER BY created_at"
        )))
        .bind(tenant.as_str())
        .bind(key.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
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
        let mut tx = self.write(tenant).await?;
        tool_call_started_in(&mut tx, tenant, run, call_id, tool, arguments).await?;
        self.commit(tx).await
    }

    async fn tool_call_finished(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
        status: ToolCallStatus,
        result: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write(tenant).await?;
        tool_call_finished_in(&mut tx, tenant, run, call_id, status, result).await?;
        self.commit(tx).await
    }

    async fn tool_calls(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> Result<Vec<ToolCallRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = sqlx::query(
            "SELECT run_id, call_id, tool, arguments, status, result, started_at, finished_at \
             FROM tool_calls WHERE tenant_id = $1 AND run_id = $2 ORDER BY id",
        )
        .bind(tenant.as_str())
        .bind(run.as_str())
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter().map(tool_call_row).collect()
    }
}
