//! Tasks as A2A shows them (a run: its state, the question it waits on, its history
//! and its answer), and the methods that read and cancel them.

use facio_services::domain::{Role, RunId, SessionKey, TenantId};
use facio_services::review::{ReviewPayload, SelectionMode};
use facio_services::store::{
    ReviewFilter, ReviewRecord, ReviewStatus, RunFilter, RunRecord, RunStatus,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Answer, Call, RpcError, Version};
use crate::routes::AppState;

/// Tasks per ListTasks page unless the caller asks for fewer (at most 100).
const PAGE: u32 = 50;

/// The review tools an A2A caller may answer itself: questions the agent asks on
/// purpose. A gated call's approval is the tenant's reviewers' alone.
pub(super) fn answerable(review: &ReviewRecord) -> bool {
    matches!(
        review.tool.as_str(),
        "ask_approval" | "ask_selection" | "ask_form" | "ask_text_input"
    )
}

/// The reviews `run` waits on, oldest first (none unless it awaits a review).
pub(super) async fn pending_reviews(
    state: &AppState,
    tenant: &TenantId,
    run: &RunRecord,
) -> Result<Vec<ReviewRecord>, RpcError> {
    if run.status != RunStatus::AwaitingReview {
        return Ok(Vec::new());
    }
    let filter = ReviewFilter {
        run_id: Some(run.run_id.clone()),
        status: Some(ReviewStatus::Pending),
        ..ReviewFilter::default()
    };
    let mut reviews = state
        .runtime
        .store()
        .list_reviews(tenant, &filter)
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?;
    reviews.reverse();
    Ok(reviews)
}

/// A run as a task, with at most `history` messages of its history (`None`: all).
pub(super) async fn view(
    state: &AppState,
    tenant: &TenantId,
    run: &RunRecord,
    history: Option<usize>,
) -> Result<Value, RpcError> {
    let pending = pending_reviews(state, tenant, run).await?;
    view_with(state, tenant, run, history, &pending).await
}

/// [`view`] with the run's `pending` reviews already read.
pub(super) async fn view_with(
    state: &AppState,
    tenant: &TenantId,
    run: &RunRecord,
    history: Option<usize>,
    pending: &[ReviewRecord],
) -> Result<Value, RpcError> {
    let (state_name, message) = status_of(run, pending);
    let mut status = json!({"state": state_name, "timestamp": timestamp(run)});
    if let Some(message) = message {
        status["message"] = message;
    }
    let mut task = json!({
        "id": run.run_id,
        "contextId": run.session_key,
        "status": status,
    });
    if run.status == RunStatus::Completed
        && let Some(content) = &run.content
    {
        task["artifacts"] = json!([{
            "artifactId": format!("{}-answer", run.run_id),
            "name": "answer",
            "parts": [{"text": content, "mediaType": "text/plain"}],
        }]);
    }
    // The session's whole history is read to pick the run's messages: not when
    // none are asked for (a listing's default).
    if history == Some(0) {
        task["history"] = json!([]);
        return Ok(task);
    }
    let messages = state
        .runtime
        .store()
        .history(tenant, &run.session_key)
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?;
    let mut shown: Vec<Value> = messages
        .iter()
        .filter(|m| m.run_id.as_ref() == Some(&run.run_id))
        .filter_map(|m| {
            let role = match m.message.role {
                Role::User => "ROLE_USER",
                Role::Assistant => "ROLE_AGENT",
                _ => return None,
            };
            let text = m
                .message
                .content
                .as_deref()
                .filter(|t| !t.trim().is_empty())?;
            Some(json!({
                "messageId": format!("{}-{}", run.run_id, m.seq),
                "role": role,
                "parts": [{"text": text}],
                "contextId": run.session_key,
                "taskId": run.run_id,
            }))
        })
        .collect();
    if let Some(keep) = history {
        let skip = shown.len().saturating_sub(keep);
        shown.drain(..skip);
    }
    task["history"] = json!(shown);
    Ok(task)
}

fn timestamp(run: &RunRecord) -> String {
    run.finished_at
        .unwrap_or(run.created_at)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The task's state, and the agent's message that goes with it.
fn status_of(run: &RunRecord, pending: &[ReviewRecord]) -> (&'static str, Option<Value>) {
    let agent = |text: String, data: Option<Value>| {
        let mut parts = vec![json!({"text": text})];
        if let Some(data) = data {
            parts.push(json!({"data": data}));
        }
        json!({
            "messageId": format!("{}-status", run.run_id),
            "role": "ROLE_AGENT",
            "parts": parts,
            "contextId": run.session_key,
            "taskId": run.run_id,
        })
    };
    match run.status {
        RunStatus::Queued => ("TASK_STATE_SUBMITTED", None),
        RunStatus::Running => ("TASK_STATE_WORKING", None),
        RunStatus::AwaitingReview => match pending.iter().find(|r| answerable(r)) {
            Some(review) => (
                "TASK_STATE_INPUT_REQUIRED",
                Some(agent(question(review), Some(question_data(review)))),
            ),
            None => (
                "TASK_STATE_WORKING",
                Some(agent(
                    "Waiting for a human reviewer to decide a step of this task; it goes on once they have."
                        .to_owned(),
                    None,
                )),
            ),
        },
        RunStatus::Completed => ("TASK_STATE_COMPLETED", None),
        RunStatus::Cancelled => ("TASK_STATE_CANCELED", None),
        RunStatus::Failed | RunStatus::Interrupted => (
            "TASK_STATE_FAILED",
            run.content.clone().map(|c| agent(c, None)),
        ),
    }
}

/// The question as text: title, description and how to answer.
fn question(review: &ReviewRecord) -> String {
    let request = &review.request;
    let mut text = request.title.clone();
    if let Some(description) = &request.description {
        text.push_str("\n\n");
        text.push_str(description);
    }
    let how = match &request.payload {
        ReviewPayload::Approval(p) => format!(
            "Answer with one of: {}.",
            p.options
                .iter()
                .map(|o| format!("{} ({})", o.id, o.label))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ReviewPayload::Selection(p) => format!(
            "Answer with {} of these ids, separated by commas: {}.",
            if p.mode == SelectionMode::Multi {
                "one or more"
            } else {
                "one"
            },
            p.items
                .iter()
                .map(|i| format!("{} ({})", i.id, i.label))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ReviewPayload::Form(_) => {
            "Answer with a data part holding the form's fields as an object.".to_owned()
        }
        ReviewPayload::TextInput(_) => "Answer with the text.".to_owned(),
        ReviewPayload::Freeform(_) => "Answer with a data part.".to_owned(),
    };
    format!("{text}\n\n{how}")
}

/// The question in machine-readable form: the review's type and payload.
fn question_data(review: &ReviewRecord) -> Value {
    let payload = serde_json::to_value(&review.request.payload).unwrap_or(Value::Null);
    json!({
        "reviewId": review.id,
        "type": review.request.payload.review_type().as_str(),
        "title": review.request.title,
        "payload": payload.get("payload").cloned().unwrap_or(Value::Null),
    })
}

/// The caller's run `id`, or TaskNotFound (another tenant's run is not found either).
pub(super) async fn find(call: &Call, id: &str) -> Result<RunRecord, RpcError> {
    let Ok(run_id) = RunId::new(id.to_owned()) else {
        return Err(RpcError::task_not_found(id));
    };
    call.state
        .runtime
        .store()
        .get_run(call.caller.tenant(), &run_id)
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
        .ok_or_else(|| RpcError::task_not_found(id))
}

/// A task as the caller's version shows it.
pub(super) fn shown(version: Version, task: Value) -> Value {
    match version {
        Version::V1 => task,
        Version::V03 => super::v03::task(task),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    id: String,
    history_length: Option<usize>,
}

fn params<T: serde::de::DeserializeOwned>(call: &Call) -> Result<T, (Value, RpcError)> {
    serde_json::from_value(call.params.clone())
        .map_err(|e| call.fail(RpcError::invalid_params(format!("params: {e}"))))
}

pub(super) async fn get(call: Call) -> Answer {
    let p: GetParams = params(&call)?;
    let run = find(&call, &p.id).await.map_err(|e| call.fail(e))?;
    let task = view(&call.state, call.caller.tenant(), &run, p.history_length)
        .await
        .map_err(|e| call.fail(e))?;
    call.answer(shown(call.caller.version, task))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    context_id: Option<String>,
    status: Option<String>,
    page_size: Option<u32>,
    page_token: Option<String>,
    history_length: Option<usize>,
    include_artifacts: Option<bool>,
}

/// The run states a task state stands for.
fn statuses(state: &str) -> Option<Vec<RunStatus>> {
    Some(match state {
        "TASK_STATE_SUBMITTED" | "submitted" => vec![RunStatus::Queued],
        "TASK_STATE_WORKING" | "working" => vec![RunStatus::Running, RunStatus::AwaitingReview],
        "TASK_STATE_INPUT_REQUIRED" | "input-required" => vec![RunStatus::AwaitingReview],
        "TASK_STATE_COMPLETED" | "completed" => vec![RunStatus::Completed],
        "TASK_STATE_CANCELED" | "canceled" => vec![RunStatus::Cancelled],
        "TASK_STATE_FAILED" | "failed" => vec![RunStatus::Failed, RunStatus::Interrupted],
        "TASK_STATE_REJECTED" | "rejected" | "TASK_STATE_AUTH_REQUIRED" | "auth-required" => {
            Vec::new()
        }
        _ => return None,
    })
}

pub(super) async fn list(call: Call) -> Answer {
    let p: ListParams = params(&call)?;
    let size = p.page_size.filter(|s| *s > 0).unwrap_or(PAGE).min(100);
    let session_key = match p.context_id.filter(|c| !c.is_empty()) {
        Some(context) => match SessionKey::new(context) {
            Ok(key) => Some(key),
            Err(_) => {
                return call.answer(
                    json!({"tasks": [], "nextPageToken": "", "pageSize": size, "totalSize": 0}),
                );
            }
        },
        None => None,
    };
    let mut filter = RunFilter {
        session_key,
        statuses: Vec::new(),
        before: None,
        limit: size + 1,
    };
    let wanted = p
        .status
        .filter(|s| !s.is_empty() && s != "TASK_STATE_UNSPECIFIED");
    if let Some(state) = &wanted {
        let Some(runs) = statuses(state) else {
            return Err(call.fail(RpcError::invalid_params(format!(
                "status: no task state {state:?}"
            ))));
        };
        if runs.is_empty() {
            return call.answer(
                json!({"tasks": [], "nextPageToken": "", "pageSize": size, "totalSize": 0}),
            );
        }
        filter.statuses = runs;
    }
    if let Some(token) = p.page_token.filter(|t| !t.is_empty()) {
        filter.before = Some(RunId::new(token).map_err(|_| {
            call.fail(RpcError::invalid_params(
                "pageToken: not one this agent gave",
            ))
        })?);
    }
    let (mut runs, total) = call
        .state
        .runtime
        .store()
        .list_runs(call.caller.tenant(), &filter)
        .await
        .map_err(|e| call.fail(RpcError::internal(e.to_string())))?;
    let more = runs.len() > size as usize;
    runs.truncate(size as usize);
    let mut tasks = Vec::with_capacity(runs.len());
    for run in &runs {
        let mut task = view(
            &call.state,
            call.caller.tenant(),
            run,
            Some(p.history_length.unwrap_or(0)),
        )
        .await
        .map_err(|e| call.fail(e))?;
        // Input-required and working both come from runs waiting on a review: only
        // the state asked for is listed.
        if let Some(state) = &wanted
            && !same_state(&task["status"]["state"], state)
        {
            continue;
        }
        if p.include_artifacts != Some(true)
            && let Some(object) = task.as_object_mut()
        {
            object.remove("artifacts");
        }
        tasks.push(shown(call.caller.version, task));
    }
    let next = if more {
        runs.last()
            .map(|r| r.run_id.to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    call.answer(json!({
        "tasks": tasks,
        "nextPageToken": next,
        "pageSize": size,
        "totalSize": total,
    }))
}

fn same_state(shown: &Value, asked: &str) -> bool {
    let shown = shown.as_str().unwrap_or_default();
    shown == asked || super::v03::state(shown) == asked
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelParams {
    id: String,
}

pub(super) async fn cancel(call: Call) -> Answer {
    let p: CancelParams = params(&call)?;
    let run = find(&call, &p.id).await.map_err(|e| call.fail(e))?;
    if !matches!(
        run.status,
        RunStatus::Queued | RunStatus::Running | RunStatus::AwaitingReview
    ) {
        return Err(call.fail(RpcError::new(
            -32002,
            "TASK_NOT_CANCELABLE",
            format!(
                "task {} has ended ({}); it cannot be canceled",
                run.run_id,
                run.status.as_str()
            ),
        )));
    }
    let mut notices = call.state.runtime.notices();
    call.state
        .runtime
        .cancel(call.caller.tenant().clone(), run.session_key.clone())
        .await
        .map_err(|e| call.fail(RpcError::internal(e.to_string())))?;
    // Answer with the task once it has ended (the stop reaches it at once).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let run = loop {
        let now = find(&call, &p.id).await.map_err(|e| call.fail(e))?;
        if !matches!(
            now.status,
            RunStatus::Queued | RunStatus::Running | RunStatus::AwaitingReview
        ) {
            break now;
        }
        if tokio::time::timeout_at(deadline, notices.recv())
            .await
            .is_err()
        {
            break now;
        }
    };
    let task = view(&call.state, call.caller.tenant(), &run, Some(0))
        .await
        .map_err(|e| call.fail(e))?;
    call.answer(shown(call.caller.version, task))
}
