//! Reviews and policy documents.

use async_trait::async_trait;
// Dynamic SQL here only splices constant column lists and fixed clauses; every
// value is bound.
use sqlx::{AssertSqlSafe, Row};

use super::{SqliteStore, now, parse_id, parse_opt_ts, parse_ts, ts};
use crate::domain::{RunId, TenantId};
use crate::review::{ReviewId, ReviewOutcome};
use crate::store::{
    NewReview, ReviewFilter, ReviewRecord, ReviewRepository, ReviewStatus, StoreError,
};

const COLUMNS: &str = "tenant_id, review_id, session_key, run_id, call_id, tool, origin, \
     request, context, status, created_at, expires_at, outcome, decided_at";

fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("review {what}: {e}")))
}

fn review_row(row: &sqlx::sqlite::SqliteRow) -> Result<ReviewRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(ReviewRecord {
        tenant: parse_id("tenant_id", row.try_get("tenant_id")?)?,
        id: parse_id("review_id", row.try_get("review_id")?)?,
        session_key: parse_id("session_key", row.try_get("session_key")?)?,
        run_id: parse_id("run_id", row.try_get("run_id")?)?,
        call_id: row.try_get("call_id")?,
        tool: row.try_get("tool")?,
        origin: row.try_get("origin")?,
        request: json("request", row.try_get("request")?)?,
        context: json("context", row.try_get("context")?)?,
        status: ReviewStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown review status {status:?}")))?,
        created_at: parse_ts("created_at", row.try_get("created_at")?)?,
        expires_at: parse_ts("expires_at", row.try_get("expires_at")?)?,
        outcome: outcome.map(|o| json("outcome", &o)).transpose()?,
        decided_at: parse_opt_ts("decided_at", row.try_get("decided_at")?)?,
    })
}

fn encode<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode review {what}: {e}")))
}

/// Inserts a pending review inside the caller's transaction.
pub(super) async fn create_review_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    review: &NewReview,
) -> Result<(), StoreError> {
    let request = encode("request", &review.request)?;
    let context = encode("context", &review.context)?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO reviews ({COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, NULL, NULL)"
    )))
    .bind(tenant.as_str())
    .bind(review.id.as_str())
    .bind(review.session_key.as_str())
    .bind(review.run_id.as_str())
    .bind(&review.call_id)
    .bind(&review.tool)
    .bind(&review.origin)
    .bind(&request)
    .bind(&context)
    .bind(ts(&now()))
    .bind(ts(&review.expires_at))
    .execute(&mut *conn)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(format!("run {}", review.run_id))
        }
        other => other.into(),
    })?;
    Ok(())
}

/// One review, read inside the caller's transaction.
pub(super) async fn get_review_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    id: &ReviewId,
) -> Result<Option<ReviewRecord>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE tenant_id = ? AND review_id = ?"
    )))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(review_row).transpose()
}

/// Closes a pending review with its outcome inside the caller's transaction and
/// returns it closed; a review that is not pending is a conflict, a missing one not
/// found.
pub(super) async fn close_review_in(
    conn: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    id: &ReviewId,
    outcome: &ReviewOutcome,
) -> Result<ReviewRecord, StoreError> {
    let encoded = encode("outcome", outcome)?;
    let at = ts(&now());
    // A timeout closes only a review whose deadline has passed by the database's
    // clock (on SQLite, this node's: it is the only one).
    let timing_out = matches!(outcome, ReviewOutcome::TimedOut);
    let updated = sqlx::query(
        "UPDATE reviews SET status = ?, outcome = ?, decided_at = ? \
         WHERE tenant_id = ? AND review_id = ? AND status = 'pending' \
         AND (NOT ? OR expires_at <= ?)",
    )
    .bind(ReviewStatus::of(outcome).as_str())
    .bind(&encoded)
    .bind(&at)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .bind(timing_out)
    .bind(&at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let record = get_review_in(conn, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("review {id}")))?;
    if updated == 0 && timing_out && record.status == ReviewStatus::Pending {
        return Err(StoreError::NotExpired(id.to_string()));
    }
    if updated == 0 {
        return Err(StoreError::Conflict(format!(
            "review {id} is already {}",
            record.status.as_str()
        )));
    }
    Ok(record)
}

#[async_trait]
impl ReviewRepository for SqliteStore {
    async fn create_review(
        &self,
        tenant: &TenantId,
        review: NewReview,
    ) -> Result<ReviewRecord, StoreError> {
        let tenant = tenant.clone();
        self.write(move |conn| {
            Box::pin(async move {
                create_review_in(&mut *conn, &tenant, &review).await?;
                get_review_in(&mut *conn, &tenant, &review.id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("review {}", review.id)))
            })
        })
        .await
    }

    async fn get_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let mut conn = self.read_pool().acquire().await?;
        get_review_in(&mut conn, tenant, id).await
    }

    async fn list_reviews(
        &self,
        tenant: &TenantId,
        filter: &ReviewFilter,
    ) -> Result<Vec<ReviewRecord>, StoreError> {
        // The narrowest index by name: without statistics the planner takes the
        // status index for `status = ? AND run_id = ?` (it also gives the order),
        // and then reads every pending review of the tenant to find one run's.
        let index = if filter.run_id.is_some() {
            " INDEXED BY reviews_by_run"
        } else if filter.session_key.is_some() {
            " INDEXED BY reviews_by_session"
        } else {
            ""
        };
        let mut sql = format!("SELECT {COLUMNS} FROM reviews{index} WHERE tenant_id = ?");
        if filter.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        if filter.session_key.is_some() {
            sql.push_str(" AND session_key = ?");
        }
        if filter.run_id.is_some() {
            sql.push_str(" AND run_id = ?");
        }
        sql.push_str(" ORDER BY created_at DESC, review_id DESC LIMIT ?");
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
        if let Some(status) = filter.status {
            query = query.bind(status.as_str());
        }
        if let Some(key) = &filter.session_key {
            query = query.bind(key.as_str());
        }
        if let Some(run) = &filter.run_id {
            query = query.bind(run.as_str());
        }
        query = query.bind(i64::from(filter.limit.unwrap_or(200)));
        let rows = query.fetch_all(self.read_pool()).await?;
        rows.iter().map(review_row).collect()
    }

    async fn close_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
        outcome: &ReviewOutcome,
    ) -> Result<ReviewRecord, StoreError> {
        let (tenant, id, outcome) = (tenant.clone(), id.clone(), outcome.clone());
        self.write(move |conn| {
            Box::pin(async move { close_review_in(conn, &tenant, &id, &outcome).await })
        })
        .await
    }

    async fn review_for_call(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reviews WHERE tenant_id = ? AND run_id = ? AND call_id = ? \
             ORDER BY created_at DESC, review_id DESC LIMIT 1"
        )))
        .bind(tenant.as_str())
        .bind(run.as_str())
        .bind(call_id)
        .fetch_optional(self.read_pool())
        .await?;
        row.as_ref().map(review_row).transpose()
    }

    async fn all_pending_reviews(&self) -> Result<Vec<ReviewRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reviews WHERE status = 'pending' ORDER BY expires_at"
        )))
        .fetch_all(self.read_pool())
        .await?;
        rows.iter().map(review_row).collect()
    }

    async fn count_pending_reviews(&self) -> Result<u64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE status = 'pending'")
                .fetch_one(self.read_pool())
                .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn get_policy(&self, tenant: &TenantId) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT document FROM policies WHERE tenant_id = ?")
                .bind(tenant.as_str())
                .fetch_optional(self.read_pool())
                .await?;
        text.map(|t| json("policy", &t)).transpose()
    }
}
