//! `/cron`: the tenant's scheduled jobs (the Placet contract's routes). A job is a
//! prompt that runs as a turn of its session on a schedule; each change is a
//! `cron_job_changed` audit event, each fire a queued run whose `turn_queued` event
//! names the job.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use facio_services::cron::{CATCH_UP, CronError, CronJob, JobActor, JobPatch, Schedule};
use facio_services::domain::{CronJobId, RunId, SessionKey};
use serde::{Deserialize, Serialize};

use super::Caller;
use super::json::Body;
use crate::error::ApiError;
use crate::routes::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/cron", get(list).post(create))
        .route("/cron/{id}", get(show).patch(change).delete(remove))
        .route("/cron/{id}/run-now", post(run_now))
        .route("/cron/{id}/pause", post(pause))
        .route("/cron/{id}/resume", post(resume))
}

/// A job to add.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NewJob {
    /// A label (default: the job's id).
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    schedule: Schedule,
    /// The prompt each fire gives the agent.
    #[schema(min_length = 1, max_length = 20000)]
    message: String,
    /// The session its turns run in (default `cron:<id>`).
    session_key: Option<SessionKey>,
    /// Gate its tool calls even when the policy lets scheduled turns skip the gate.
    require_approval: Option<bool>,
    /// Add it paused.
    paused: Option<bool>,
}

/// What changes in a job (absent fields stay).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct JobChange {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    schedule: Option<Schedule>,
    #[schema(min_length = 1, max_length = 20000)]
    message: Option<String>,
    session_key: Option<SessionKey>,
    require_approval: Option<bool>,
    paused: Option<bool>,
}

/// What became of a job's newest instant.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct LastFire {
    at: DateTime<Utc>,
    run_id: RunId,
    /// The run's status; `missed` when it never fired (every node was down, or it was
    /// missed by more than the catch-up window), `due` while it is about to.
    status: String,
}

/// A job, when it fires next and what its last instant did.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobView {
    #[serde(flatten)]
    job: CronJob,
    /// None: paused, or a one-off that has fired.
    next_fire_at: Option<DateTime<Utc>>,
    last_fire: Option<LastFire>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct JobList {
    jobs: Vec<JobView>,
}

/// A turn given to a job's session now.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunNow {
    run_id: RunId,
    session_key: SessionKey,
}

fn actor(caller: &Caller) -> JobActor {
    JobActor {
        name: caller.subject().to_owned(),
        context: caller.audit_context(),
    }
}

fn refused(e: CronError) -> ApiError {
    match e {
        CronError::Invalid { field, reason } => ApiError::unprocessable(field, reason),
        CronError::NotFound(id) => ApiError::not_found(format!("there is no scheduled job {id}")),
        CronError::Limit(m) => ApiError::conflict("too_many_jobs", m),
        CronError::Store(e) => super::store_error(e),
    }
}

fn job_id(id: &str) -> Result<CronJobId, ApiError> {
    CronJobId::new(id).map_err(|e| ApiError::not_found(format!("there is no scheduled job: {e}")))
}

async fn view(state: &AppState, caller: &Caller, job: CronJob) -> Result<JobView, ApiError> {
    let now = Utc::now();
    let last_fire = match job.last_instant(now) {
        None => None,
        Some(at) => {
            let run_id = facio_services::cron::fire_run_id(caller.tenant(), &job.id, at);
            let run = state
                .runtime
                .store()
                .get_run(caller.tenant(), &run_id)
                .await
                .map_err(super::store_error)?;
            let status = match run {
                Some(run) => run.status.as_str().to_owned(),
                None if now - at <= CATCH_UP && !job.paused => "due".to_owned(),
                None => "missed".to_owned(),
            };
            Some(LastFire { at, run_id, status })
        }
    };
    Ok(JobView {
        next_fire_at: job.next_fire(now),
        last_fire,
        job,
    })
}

async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<JobList>, ApiError> {
    let jobs = state
        .runtime
        .cron_jobs()
        .list(caller.tenant())
        .await
        .map_err(super::store_error)?;
    let mut views = Vec::with_capacity(jobs.len());
    for job in jobs {
        views.push(view(&state, &caller, job).await?);
    }
    Ok(Json(JobList { jobs: views }))
}

async fn show(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(&id)?;
    let job = state
        .runtime
        .cron_jobs()
        .get(caller.tenant(), &id)
        .await
        .map_err(refused)?;
    Ok(Json(view(&state, &caller, job).await?))
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewJob>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let patch = JobPatch {
        name: body.name,
        schedule: Some(body.schedule),
        message: Some(body.message),
        session_key: body.session_key,
        require_approval: body.require_approval,
        paused: body.paused,
    };
    let job = state
        .runtime
        .cron_jobs()
        .create(caller.tenant(), patch, &actor(&caller))
        .await
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(view(&state, &caller, job).await?)))
}

async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    patch: JobPatch,
) -> Result<Json<JobView>, ApiError> {
    let id = job_id(id)?;
    let job = state
        .runtime
        .cron_jobs()
        .update(caller.tenant(), &id, patch, &actor(caller))
        .await
        .map_err(refused)?;
    Ok(Json(view(state, caller, job).await?))
}

async fn change(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<JobChange>,
) -> Result<Json<JobView>, ApiError> {
    let patch = JobPatch {
        name: body.name,
        schedule: body.schedule,
        message: body.message,
        session_key: body.session_key,
        require_approval: body.require_approval,
        paused: body.paused,
    };
    update(&state, &caller, &id, patch).await
}

async fn pause(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    set_paused(&state, &caller, &id, true).await
}

async fn resume(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    set_paused(&state, &caller, &id, false).await
}

async fn set_paused(
    state: &AppState,
    caller: &Caller,
    id: &str,
    paused: bool,
) -> Result<Json<JobView>, ApiError> {
    let patch = JobPatch {
        paused: Some(paused),
        ..JobPatch::default()
    };
    update(state, caller, id, patch).await
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = job_id(&id)?;
    state
        .runtime
        .cron_jobs()
        .remove(caller.tenant(), &id, &actor(&caller))
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives the job's session a turn now, as its schedule would (paused or not).
async fn run_now(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RunNow>), ApiError> {
    let id = job_id(&id)?;
    let job = state
        .runtime
        .cron_jobs()
        .get(caller.tenant(), &id)
        .await
        .map_err(refused)?;
    let run_id = state
        .runtime
        .run_job_now(caller.tenant(), &job, caller.subject())
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunNow {
            run_id,
            session_key: job.session_key,
        }),
    ))
}
