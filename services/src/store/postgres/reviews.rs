//! Reviews and policy documents.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use super::{PostgresStore, done, missing_run, now, parse_id};
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

fn encode<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode review {what}: {e}")))
}

fn review_row(row: &PgRow) -> Result<ReviewRecord, StoreError> {
    let status: &str = row.try_get("status")?;
    let outcome: Option<&str> = row.try_get("outcome")?;
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
        status: ReviewStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown review status {status:?}")))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        outcome: outcome.map(|o| json("outcome", o)).transpose()?,
        decided_at: row.try_get("decided_at")?,
    })
}

/// Inserts a pending review inside the caller's transaction.
pub(super) async fn create_review_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    review: &NewReview,
) -> Result<(), StoreError> {
    let request = encode("request", &review.request)?;
    let context = encode("context", &review.context)?;
    // The deadline runs on the database's clock: the timeout the node asked for
    // (its deadline minus its own now) is added to the database's `now()`, so nodes
    // whose clocks disagree still agree when a review expires.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO reviews ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', date_trunc('microseconds', now()), \
         date_trunc('microseconds', now() + ($11::timestamptz - $10::timestamptz)), NULL, NULL)"
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
    .bind(now())
    .bind(review.expires_at)
    .execute(&mut *conn)
    .await
    .map_err(missing_run(&review.run_id))?;
    Ok(())
}

/// One review, read inside the caller's transaction.
pub(super) async fn get_review_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    id: &ReviewId,
) -> Result<Option<ReviewRecord>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE tenant_id = $1 AND review_id = $2"
    )))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(review_row).transpose()
}

/// Closes a pending review with its outcome inside the caller's transaction and
/// returns it closed; a review that is not pending is a conflict, a missing one not
/// found. Of two concurrent closes the second waits for the first's row lock, finds
/// the review no longer pending and changes nothing.
pub(super) async fn close_review_in(
    conn: &mut sqlx::PgConnection,
    tenant: &TenantId,
    id: &ReviewId,
    outcome: &ReviewOutcome,
) -> Result<ReviewRecord, StoreError> {
    let encoded = encode("outcome", outcome)?;
    // A timeout closes only a review whose deadline has passed by the database's
    // clock, whatever the clock of the node whose timer fired says.
    let timing_out = matches!(outcome, ReviewOutcome::TimedOut);
    let updated = sqlx::query(
        "UPDATE reviews SET status = $1, outcome = $2, decided_at = $3 \
         WHERE tenant_id = $4 AND review_id = $5 AND status = 'pending' \
         AND (NOT $6 OR expires_at <= now())",
    )
    .bind(ReviewStatus::of(outcome).as_str())
    .bind(&encoded)
    .bind(now())
    .bind(tenant.as_str())
    .bind(id.as_str())
    .bind(timing_out)
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

fn list_query(tenant: &TenantId, filter: &ReviewFilter) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM reviews WHERE tenant_id = "));
    query.push_bind(tenant.as_str());
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(key) = &filter.session_key {
        query.push(" AND session_key = ").push_bind(key.as_str());
    }
    if let Some(run) = &filter.run_id {
        query.push(" AND run_id = ").push_bind(run.as_str());
    }
    query
        .push(" ORDER BY created_at DESC, review_id COLLATE \"C\" DESC LIMIT ")
        .push_bind(i64::from(filter.limit.unwrap_or(200)));
    query
}

#[async_trait]
impl ReviewRepository for PostgresStore {
    async fn create_review(
        &self,
        tenant: &TenantId,
        review: NewReview,
    ) -> Result<ReviewRecord, StoreError> {
        let mut tx = self.write(tenant).await?;
        create_review_in(&mut tx, tenant, &review).await?;
        self.commit(tx).await?;
        self.get_review(tenant, &review.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("review {}", review.id)))
    }

    async fn get_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let review = get_review_in(&mut tx, tenant, id).await?;
        done(tx).await?;
        Ok(review)
    }

    async fn list_reviews(
        &self,
        tenant: &TenantId,
        filter: &ReviewFilter,
    ) -> Result<Vec<ReviewRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let rows = list_query(tenant, filter)
            .build()
            .fetch_all(&mut *tx)
            .await?;
        done(tx).await?;
        rows.iter().map(review_row).collect()
    }

    async fn close_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
        outcome: &ReviewOutcome,
    ) -> Result<ReviewRecord, StoreError> {
        let mut tx = self.write(tenant).await?;
        let record = close_review_in(&mut tx, tenant, id, outcome).await?;
        self.commit(tx).await?;
        Ok(record)
    }

    async fn review_for_call(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reviews WHERE tenant_id = $1 AND run_id = $2 \
             AND call_id = $3 ORDER BY created_at DESC, review_id COLLATE \"C\" DESC LIMIT 1"
        )))
        .bind(tenant.as_str())
        .bind(run.as_str())
        .bind(call_id)
        .fetch_optional(&mut *tx)
        .await?;
        done(tx).await?;
        row.as_ref().map(review_row).transpose()
    }

    async fn all_pending_reviews(&self) -> Result<Vec<ReviewRecord>, StoreError> {
        let mut tx = self.read_all_tenants().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reviews WHERE status = 'pending' ORDER BY expires_at"
        )))
        .fetch_all(&mut *tx)
        .await?;
        done(tx).await?;
        rows.iter().map(review_row).collect()
    }

    async fn count_pending_reviews(&self) -> Result<u64, StoreError> {
        let mut tx = self.read_all_tenants().await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE status = 'pending'")
                .fetch_one(&mut *tx)
                .await?;
        done(tx).await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn get_policy(&self, tenant: &TenantId) -> Result<Option<serde_json::Value>, StoreError> {
        let mut tx = self.read(tenant).await?;
        let text: Option<String> =
            sqlx::query_scalar("SELECT document FROM policies WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        done(tx).await?;
        text.map(|t| json("policy", &t)).transpose()
    }
}
