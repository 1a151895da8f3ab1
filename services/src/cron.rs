//! Scheduled jobs: a tenant's prompts that run as turns on a schedule (a cron
//! pattern, a fixed interval or one instant), each in its session. A job is stored
//! with the tenant's integrations; each instant it fires at becomes a queued run
//! whose id is derived from the job and the instant, so however many nodes try to
//! fire it, the store takes it once (see `facio-actors`' scheduler).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{CronJobId, RunId, SessionKey, TenantId};
use crate::store::{
    Applied, AuditEventKind, Change, IntegrationKind, NewAuditEvent, Store, StoreError,
};

/// An instant missed by more than this (every node was down, or the job was paused)
/// is not fired late.
pub const CATCH_UP: Duration = Duration::minutes(15);
/// The shortest interval of an `everyS` schedule.
pub const MIN_EVERY_S: u64 = 1;
/// The longest interval of an `everyS` schedule (a year).
pub const MAX_EVERY_S: u64 = 366 * 24 * 3600;
/// The longest prompt of a job, in characters.
pub const MAX_MESSAGE_CHARS: usize = 20_000;
/// The longest name of a job, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Jobs one tenant may have.
pub const MAX_JOBS: usize = 1_000;

/// When a job fires (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Schedule {
    /// A cron pattern: five fields (minute hour day-of-month month day-of-week), or
    /// six with seconds first; `@hourly`, `@daily`, `@weekly`, `@monthly` too. UTC.
    Cron(String),
    /// Every this many seconds, counted from when the schedule was set.
    EveryS(u64),
    /// Once, at this instant.
    At(DateTime<Utc>),
}

impl Schedule {
    /// Checks the schedule (a pattern that parses, an interval in range, an instant
    /// not in the past): the reason names what is wrong.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), String> {
        match self {
            Self::Cron(pattern) => {
                let cron = pattern_of(pattern)?;
                // A pattern that matches no date (the 30th of February) would be
                // searched for every second.
                let horizon = now + Duration::days(5 * 366);
                match cron.find_next_occurrence(&now, false) {
                    Ok(next) if next <= horizon => Ok(()),
                    _ => Err(format!(
                        "schedule.cron {pattern:?} does not fire in the next five years"
                    )),
                }
            }
            Self::EveryS(every) if !(MIN_EVERY_S..=MAX_EVERY_S).contains(every) => Err(format!(
                "schedule.everyS must be between {MIN_EVERY_S} and {MAX_EVERY_S} seconds"
            )),
            Self::EveryS(_) => Ok(()),
            Self::At(at) if *at <= now => Err(format!(
                "schedule.at ({}) is not in the future",
                at.to_rfc3339()
            )),
            Self::At(_) => Ok(()),
        }
    }

    /// The newest instant the schedule set at `since` fires at, up to `now`.
    pub fn latest(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let instant = match self {
            Self::Cron(pattern) => pattern_of(pattern)
                .ok()?
                .find_previous_occurrence(&now, true)
                .ok()?,
            Self::EveryS(every) => {
                let every = i64::try_from(*every).ok()?.max(1);
                let elapsed = (now - since).num_seconds();
                let steps = elapsed.div_euclid(every);
                if steps < 1 {
                    return None;
                }
                since + Duration::seconds(steps * every)
            }
            Self::At(at) => *at,
        };
        (instant > since && instant <= now).then_some(instant)
    }

    /// The first instant after `now` the schedule set at `since` fires at.
    pub fn next(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = now.max(since);
        match self {
            Self::Cron(pattern) => pattern_of(pattern)
                .ok()?
                .find_next_occurrence(&from, false)
                .ok(),
            Self::EveryS(every) => {
                let every = i64::try_from(*every).ok()?.max(1);
                let steps = (from - since).num_seconds().div_euclid(every) + 1;
                Some(since + Duration::seconds(steps * every))
            }
            Self::At(at) => (*at > from).then_some(*at),
        }
    }
}

fn pattern_of(pattern: &str) -> Result<croner::Cron, String> {
    croner::Cron::from_str(pattern)
        .map_err(|e| format!("schedule.cron {pattern:?} is not a cron pattern: {e}"))
}

/// A tenant's scheduled job, as stored and shown (the API's views add fields to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronJob {
    pub id: CronJobId,
    pub name: String,
    pub schedule: Schedule,
    /// The prompt each fire gives the agent.
    pub message: String,
    /// The session its turns run in (default `cron:<id>`).
    pub session_key: SessionKey,
    /// Its tool calls go to a human under the tenant's rules even when the policy
    /// lets scheduled turns skip the gate (`skipCron`).
    pub require_approval: bool,
    /// A paused job does not fire (instants passed while paused are skipped).
    pub paused: bool,
    /// From when the schedule counts: its creation, its last schedule change or its
    /// resume. No instant at or before it fires.
    pub since: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who added it.
    pub created_by: String,
}

impl CronJob {
    /// The instant due now, if one is and was not missed by more than [`CATCH_UP`].
    pub fn due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.paused {
            return None;
        }
        self.schedule
            .latest(self.since, now)
            .filter(|at| now - *at <= CATCH_UP)
    }

    /// When it fires next (none: paused, or a one-off that fired).
    pub fn next_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (!self.paused)
            .then(|| self.schedule.next(self.since, now))
            .flatten()
    }

    /// The newest instant it fired at or should have (none: not yet).
    pub fn last_instant(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.latest(self.since, now)
    }
}

/// The run of `job`'s fire at `at`: the same id on every node, so the store takes
/// each instant once.
pub fn fire_run_id(tenant: &TenantId, job: &CronJobId, at: DateTime<Utc>) -> RunId {
    let mut hash = Sha256::new();
    hash.update(tenant.as_str().as_bytes());
    hash.update(b"\0");
    hash.update(job.as_str().as_bytes());
    hash.update(b"\0");
    hash.update(at.timestamp_millis().to_be_bytes());
    let digest = hash.finalize();
    // Infallible: `run_` and 32 hex digits is a run id.
    RunId::new(format!("run_{}", hex::encode(&digest[..16]))).unwrap_or_else(|_| RunId::generate())
}

/// Why a job change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// `field` names the part of the job that is wrong, when one is.
    #[error("{reason}")]
    Invalid {
        field: Option<&'static str>,
        reason: String,
    },
    #[error("there is no scheduled job {0}")]
    NotFound(String),
    #[error("{0}")]
    Limit(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new job, or what changes in one.
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    pub name: Option<String>,
    pub schedule: Option<Schedule>,
    pub message: Option<String>,
    pub session_key: Option<SessionKey>,
    pub require_approval: Option<bool>,
    pub paused: Option<bool>,
}

/// Who changes a tenant's jobs, as the audit log records it.
#[derive(Debug, Clone)]
pub struct JobActor {
    pub name: String,
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// Every tenant's scheduled jobs, in the store.
pub struct CronJobs {
    store: Arc<dyn Store>,
    /// Moves with every change made here, so this node's scheduler reads the jobs
    /// again at once.
    generation: AtomicU64,
}

impl CronJobs {
    pub fn new(store: Arc<dyn Store>) -> Arc<CronJobs> {
        Arc::new(CronJobs {
            store,
            generation: AtomicU64::new(0),
        })
    }

    /// A number that changes with every change of a job made on this node.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The tenant's jobs, oldest first.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<CronJob>, StoreError> {
        let rows = self
            .store
            .integrations(tenant, IntegrationKind::CronJob)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, definition)| parsed(&id, definition))
            .collect())
    }

    /// Every tenant's jobs, in one read.
    pub async fn all(&self) -> Result<Vec<(TenantId, CronJob)>, StoreError> {
        let rows = self
            .store
            .all_integrations(IntegrationKind::CronJob)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(tenant, id, definition)| Some((tenant, parsed(&id, definition)?)))
            .collect())
    }

    pub async fn get(&self, tenant: &TenantId, id: &CronJobId) -> Result<CronJob, CronError> {
        self.list(tenant)
            .await?
            .into_iter()
            .find(|j| &j.id == id)
            .ok_or_else(|| CronError::NotFound(id.to_string()))
    }

    /// Adds a job: `schedule` and `message` are required.
    pub async fn create(
        &self,
        tenant: &TenantId,
        patch: JobPatch,
        actor: &JobActor,
    ) -> Result<CronJob, CronError> {
        let now = Utc::now();
        let (Some(schedule), Some(message)) = (patch.schedule.clone(), patch.message.clone())
        else {
            return Err(CronError::Invalid {
                field: None,
                reason: "a job needs a schedule and a message".to_owned(),
            });
        };
        if self.list(tenant).await?.len() >= MAX_JOBS {
            return Err(CronError::Limit(format!(
                "a tenant may have at most {MAX_JOBS} scheduled jobs"
            )));
        }
        let id = CronJobId::generate();
        let session_key = match patch.session_key.clone() {
            Some(key) => key,
            None => SessionKey::new(format!("cron:{id}")).map_err(|e| CronError::Invalid {
                field: Some("sessionKey"),
                reason: e.to_string(),
            })?,
        };
        let job = CronJob {
            name: patch.name.clone().unwrap_or_else(|| id.to_string()),
            id,
            schedule,
            message,
            session_key,
            require_approval: patch.require_approval.unwrap_or(false),
            paused: patch.paused.unwrap_or(false),
            since: now,
            created_at: now,
            updated_at: now,
            created_by: actor.name.clone(),
        };
        check(&job, now)?;
        self.put(tenant, &job, false, "added", actor).await?;
        Ok(job)
    }

    /// Changes a job. A new schedule, and a resume, count from now.
    pub async fn update(
        &self,
        tenant: &TenantId,
        id: &CronJobId,
        patch: JobPatch,
        actor: &JobActor,
    ) -> Result<CronJob, CronError> {
        let now = Utc::now();
        let before = self.get(tenant, id).await?;
        let mut job = before.clone();
        if let Some(name) = patch.name {
            job.name = name;
        }
        if let Some(schedule) = patch.schedule
            && schedule != job.schedule
        {
            job.schedule = schedule;
            job.since = now;
        }
        if let Some(message) = patch.message {
            job.message = message;
        }
        if let Some(key) = patch.session_key {
            job.session_key = key;
        }
        if let Some(require) = patch.require_approval {
            job.require_approval = require;
        }
        if let Some(paused) = patch.paused
            && paused != job.paused
        {
            job.paused = paused;
            if !paused {
                job.since = now;
            }
        }
        if job == before {
            return Ok(job);
        }
        job.updated_at = now;
        // A one-off that fired may be given a new instant; its old one is not checked.
        if job.schedule != before.schedule {
            check(&job, now)?;
        } else {
            check_text(&job)?;
        }
        let action = match (before.paused, job.paused) {
            (false, true) => "paused",
            (true, false) => "resumed",
            _ => "changed",
        };
        self.put(tenant, &job, true, action, actor).await?;
        Ok(job)
    }

    pub async fn remove(
        &self,
        tenant: &TenantId,
        id: &CronJobId,
        actor: &JobActor,
    ) -> Result<(), CronError> {
        let job = self.get(tenant, id).await?;
        let change = Change::DeleteIntegration {
            kind: IntegrationKind::CronJob,
            name: id.to_string(),
        };
        let event = event(tenant, &job, "removed", actor);
        let applied = self.store.apply_change(tenant, change, vec![event]).await?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        if applied == Applied::Missing {
            return Err(CronError::NotFound(id.to_string()));
        }
        Ok(())
    }

    async fn put(
        &self,
        tenant: &TenantId,
        job: &CronJob,
        replace: bool,
        action: &str,
        actor: &JobActor,
    ) -> Result<(), CronError> {
        let definition = serde_json::to_value(job)
            .map_err(|e| CronError::Store(StoreError::Corrupt(e.to_string())))?;
        let change = Change::PutIntegration {
            kind: IntegrationKind::CronJob,
            name: job.id.to_string(),
            definition,
            replace,
        };
        let event = event(tenant, job, action, actor);
        self.store.apply_change(tenant, change, vec![event]).await?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

fn parsed(id: &str, definition: serde_json::Value) -> Option<CronJob> {
    serde_json::from_value::<CronJob>(definition)
        .map_err(|e| tracing::warn!(job = %id, error = %e, "a stored job does not parse"))
        .ok()
}

fn check(job: &CronJob, now: DateTime<Utc>) -> Result<(), CronError> {
    job.schedule
        .check(now)
        .map_err(|reason| CronError::Invalid {
            field: Some("schedule"),
            reason,
        })?;
    check_text(job)
}

fn check_text(job: &CronJob) -> Result<(), CronError> {
    let name = job.name.chars().count();
    if name == 0 || name > MAX_NAME_CHARS || job.name.chars().any(char::is_control) {
        return Err(CronError::Invalid {
            field: Some("name"),
            reason: format!(
                "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
            ),
        });
    }
    if job.message.trim().is_empty() || job.message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(CronError::Invalid {
            field: Some("message"),
            reason: format!("message must be 1 to {MAX_MESSAGE_CHARS} characters, not blank"),
        });
    }
    Ok(())
}

fn event(
    tenant: &TenantId,
    job: &CronJob,
    action: &str,
    actor: &JobActor,
) -> (TenantId, NewAuditEvent) {
    let mut data = serde_json::json!({
        "job": job.id,
        "name": job.name,
        "action": action,
        "schedule": job.schedule,
        "sessionKey": job.session_key,
        "requireApproval": job.require_approval,
        "paused": job.paused,
    });
    for (key, value) in &actor.context {
        data[key.as_str()] = value.clone();
    }
    (
        tenant.clone(),
        NewAuditEvent {
            kind: AuditEventKind::CronJobChanged,
            session_key: Some(job.session_key.clone()),
            run_id: None,
            actor: actor.name.clone(),
            data,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_cron_pattern_fires_at_its_minutes_and_never_before_it_was_set() {
        let every_five = Schedule::Cron("*/5 * * * *".into());
        let since = at("2026-12-07T10:02:30Z");
        assert_eq!(every_five.latest(since, at("2026-12-07T10:04:59Z")), None);
        assert_eq!(
            every_five.latest(since, at("2026-12-07T10:07:00Z")),
            Some(at("2026-12-07T10:05:00Z"))
        );
        assert_eq!(
            every_five.next(since, at("2026-12-07T10:05:00Z")),
            Some(at("2026-12-07T10:10:00Z"))
        );
        let seconds = Schedule::Cron("*/2 * * * * *".into());
        assert_eq!(
            seconds.latest(since, at("2026-12-07T10:02:33Z")),
            Some(at("2026-12-07T10:02:32Z"))
        );
    }

    #[test]
    fn an_interval_counts_from_when_it_was_set() {
        let every = Schedule::EveryS(10);
        let since = at("2026-12-07T10:00:03Z");
        assert_eq!(every.latest(since, at("2026-12-07T10:00:12Z")), None);
        assert_eq!(
            every.latest(since, at("2026-12-07T10:00:25Z")),
            Some(at("2026-12-07T10:00:23Z"))
        );
        assert_eq!(
            every.next(since, at("2026-12-07T10:00:23Z")),
            Some(at("2026-12-07T10:00:33Z"))
        );
    }

    #[test]
    fn a_one_off_fires_once_and_a_bad_schedule_says_why() {
        let once = Schedule::At(at("2026-12-07T12:00:00Z"));
        let since = at("2026-12-07T11:00:00Z");
        assert_eq!(once.latest(since, at("2026-12-07T11:59:59Z")), None);
        assert_eq!(
            once.latest(since, at("2026-12-07T12:30:00Z")),
            Some(at("2026-12-07T12:00:00Z"))
        );
        assert_eq!(once.next(since, at("2026-12-07T12:30:00Z")), None);
        let now = at("2026-12-07T11:00:00Z");
        let err = Schedule::Cron("every tuesday".into())
            .check(now)
            .unwrap_err();
        assert!(err.contains("schedule.cron"), "{err}");
        assert!(
            Schedule::EveryS(0)
                .check(now)
                .unwrap_err()
                .contains("everyS")
        );
        let past = Schedule::At(at("2026-12-07T10:00:00Z"))
            .check(now)
            .unwrap_err();
        assert!(past.contains("not in the future"), "{past}");
    }

    #[test]
    fn a_missed_instant_is_caught_up_only_within_the_window_and_not_while_paused() {
        let since = at("2026-12-07T10:00:00Z");
        let mut job = CronJob {
            id: CronJobId::generate(),
            name: "n".into(),
            schedule: Schedule::Cron("0 * * * *".into()),
            message: "m".into(),
            session_key: SessionKey::new("cron:x").unwrap(),
            require_approval: false,
            paused: false,
            since,
            created_at: since,
            updated_at: since,
            created_by: "t".into(),
        };
        assert_eq!(
            job.due(at("2026-12-07T11:10:00Z")),
            Some(at("2026-12-07T11:00:00Z"))
        );
        assert_eq!(job.due(at("2026-12-07T11:20:00Z")), None);
        job.paused = true;
        assert_eq!(job.due(at("2026-12-07T11:05:00Z")), None);
        assert_eq!(job.next_fire(at("2026-12-07T11:05:00Z")), None);
    }

    #[test]
    fn a_fire_has_one_run_id_per_job_and_instant() {
        let tenant = TenantId::default_tenant();
        let job = CronJobId::generate();
        let other = CronJobId::generate();
        let t = at("2026-12-07T10:00:00Z");
        assert_eq!(fire_run_id(&tenant, &job, t), fire_run_id(&tenant, &job, t));
        assert_ne!(
            fire_run_id(&tenant, &job, t),
            fire_run_id(&tenant, &job, t + Duration::seconds(1))
        );
        assert_ne!(
            fire_run_id(&tenant, &job, t),
            fire_run_id(&tenant, &other, t)
        );
    }
}

/// The agent's tool for its own scheduled jobs.
pub const CRON_TOOL: &str = "cron";

/// The `cron` tool's spec (the same for every tenant).
pub fn cron_spec() -> crate::tools::ToolSpec {
    crate::tools::ToolSpec {
        name: CRON_TOOL.to_owned(),
        description: "Schedule a prompt to run later as a turn of its own session, list this \
                      workspace's scheduled jobs, or remove one you scheduled. `add` takes \
                      `schedule`: {\"cron\": \"0 7 * * MON-FRI\"} (UTC), {\"everyS\": 3600} or \
                      {\"at\": \"2026-12-24T08:00:00Z\"}, and the `message` to run. Calls in \
                      jobs you schedule always go to a human under the workspace's rules."
            .to_owned(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["add", "list", "remove"]},
                "name": {"type": "string", "description": "for add: a label"},
                "schedule": {
                    "type": "object",
                    "description": "for add: exactly one of cron, everyS, at",
                    "properties": {
                        "cron": {"type": "string"},
                        "everyS": {"type": "integer", "minimum": 1},
                        "at": {"type": "string", "format": "date-time"},
                    },
                },
                "message": {"type": "string", "description": "for add: the prompt to run"},
                "id": {"type": "string", "description": "for remove: the job's id"},
            },
            "required": ["action"],
        }),
        risk: crate::tools::RiskTier::SystemEffect,
    }
}

/// Who the agent is in a job's `createdBy` and the audit log.
const AGENT: &str = "agent";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolArgs {
    action: ToolAction,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    schedule: Option<Schedule>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    id: Option<CronJobId>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ToolAction {
    Add,
    List,
    Remove,
}

/// The `cron` tool of one tenant.
pub struct CronTool {
    jobs: Arc<CronJobs>,
    tenant: TenantId,
}

impl CronJobs {
    /// The `cron` tool as `tenant`'s turns see it.
    pub fn tool(self: &Arc<Self>, tenant: &TenantId) -> Arc<dyn crate::tools::Tool> {
        Arc::new(CronTool {
            jobs: self.clone(),
            tenant: tenant.clone(),
        })
    }
}

#[async_trait::async_trait]
impl crate::tools::Tool for CronTool {
    fn spec(&self) -> crate::tools::ToolSpec {
        cron_spec()
    }

    async fn execute(
        &self,
        _ctx: &crate::tools::ToolContext,
        args: serde_json::Value,
    ) -> Result<crate::tools::ToolOutput, crate::tools::ToolError> {
        use crate::tools::{ToolError, ToolErrorKind, ToolOutput};
        let args: ToolArgs = crate::tools::parse_args(args)?;
        let actor = JobActor {
            name: AGENT.to_owned(),
            context: serde_json::Map::from_iter([(
                "surface".to_owned(),
                serde_json::json!(CRON_TOOL),
            )]),
        };
        let failed = |e: CronError| {
            let kind = match e {
                CronError::Invalid { .. } => ToolErrorKind::InvalidArguments,
                CronError::NotFound(_) => ToolErrorKind::NotFound,
                CronError::Limit(_) | CronError::Store(_) => ToolErrorKind::Failed,
            };
            ToolError::new(kind, e.to_string())
        };
        let answer = match args.action {
            ToolAction::Add => {
                // A job the agent schedules never skips the gate: a turn that could
                // not run a call unreviewed must not schedule one that can.
                let patch = JobPatch {
                    name: args.name,
                    schedule: args.schedule,
                    message: args.message,
                    session_key: None,
                    require_approval: Some(true),
                    paused: None,
                };
                let job = self
                    .jobs
                    .create(&self.tenant, patch, &actor)
                    .await
                    .map_err(failed)?;
                serde_json::json!({
                    "id": job.id, "name": job.name, "sessionKey": job.session_key,
                    "nextFireAt": job.next_fire(Utc::now()), "requireApproval": true,
                })
            }
            ToolAction::List => {
                let now = Utc::now();
                let jobs = self
                    .jobs
                    .list(&self.tenant)
                    .await
                    .map_err(|e| failed(e.into()))?;
                serde_json::json!({"jobs": jobs.iter().map(|j| serde_json::json!({
                    "id": j.id, "name": j.name, "schedule": j.schedule, "message": j.message,
                    "paused": j.paused, "nextFireAt": j.next_fire(now), "createdBy": j.created_by,
                })).collect::<Vec<_>>()})
            }
            ToolAction::Remove => {
                let Some(id) = args.id else {
                    return Err(ToolError::new(
                        ToolErrorKind::InvalidArguments,
                        "remove needs the job's `id`",
                    ));
                };
                let job = self.jobs.get(&self.tenant, &id).await.map_err(failed)?;
                if job.created_by != AGENT {
                    return Err(ToolError::new(
                        ToolErrorKind::Denied,
                        format!(
                            "job {id} was scheduled by {}; only jobs the agent scheduled can be \
                             removed with this tool",
                            job.created_by
                        ),
                    ));
                }
                self.jobs
                    .remove(&self.tenant, &id, &actor)
                    .await
                    .map_err(failed)?;
                serde_json::json!({"removed": id})
            }
        };
        Ok(ToolOutput::text(answer.to_string()))
    }
}
