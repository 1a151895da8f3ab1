//! SendMessage, SendStreamingMessage and SubscribeToTask: a message starts a turn of
//! the session its `contextId` names, or answers the question a task waits on.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use facio_actors::{Origin, TurnRequest};
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::review::{ReviewId, ReviewPayload};
use facio_services::store::{ReviewRecord, RunRecord, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use super::task::{answerable, find, pending_reviews, shown, view_with};
use super::{Answer, Call, RpcError, Version};
use crate::routes::AppState;

/// Longest a blocking SendMessage waits for its task to settle; then it answers with
/// the task as it is (the caller follows it with GetTask or SubscribeToTask).
const BLOCK_FOR: Duration = Duration::from_secs(300);
/// How often a wait looks at the store again when no notice came (a run that moves
/// on another node of a cluster sends none here).
const LOOK_AGAIN: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendParams {
    message: InMessage,
    #[serde(default)]
    configuration: Option<Configuration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InMessage {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    parts: Vec<Value>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    task_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Configuration {
    history_length: Option<usize>,
    /// v1: answer at once, with the task as it starts.
    return_immediately: Option<bool>,
    /// v0.3: `false` answers at once.
    blocking: Option<bool>,
}

/// What a message carries: its text, and the first data part.
struct Content {
    text: String,
    data: Option<Value>,
}

fn content(message: &InMessage) -> Result<Content, RpcError> {
    if !matches!(message.role.as_deref(), Some("ROLE_USER" | "user")) {
        return Err(RpcError::invalid_params(
            "message.role: a caller's message is ROLE_USER",
        ));
    }
    let mut texts = Vec::new();
    let mut data = None;
    for part in &message.parts {
        if let Some(text) = part.get("text").and_then(Value::as_str) {
            texts.push(text.to_owned());
        } else if let Some(value) = part.get("data") {
            if data.is_none() {
                data = Some(value.clone());
            }
            texts.push(format!("```json\n{value}\n```"));
        } else {
            return Err(RpcError::new(
                -32005,
                "CONTENT_TYPE_NOT_SUPPORTED",
                "this agent reads text and data parts; files (raw or url parts) are not supported",
            ));
        }
    }
    let text = texts.join("\n\n");
    if text.trim().is_empty() {
        return Err(RpcError::invalid_params(
            "message.parts: a message needs a text or data part with content",
        ));
    }
    Ok(Content { text, data })
}

/// The task a message goes to: a new turn, or the answer to a task's question.
struct Sent {
    run_id: RunId,
    /// The question answered, when the message answered one.
    answered: Option<ReviewId>,
}

/// Starts the message's turn, or answers its task's question. `Ok(Err(response))`:
/// the request ran on the session's owner, whose answer this is.
async fn deliver(call: &Call, p: &SendParams) -> Result<Result<Sent, Response>, RpcError> {
    let message = &p.message;
    let body = content(message)?;
    let tenant = call.caller.tenant().clone();
    if let Some(task_id) = message.task_id.as_deref().filter(|t| !t.is_empty()) {
        let run = find(call, task_id).await?;
        if let Some(context) = message.context_id.as_deref().filter(|c| !c.is_empty())
            && context != run.session_key.as_str()
        {
            return Err(RpcError::invalid_params(format!(
                "message.contextId {context:?} is not task {task_id}'s context"
            )));
        }
        let answered = answer(call, &run, &body).await?;
        return Ok(Ok(Sent {
            run_id: run.run_id,
            answered: Some(answered),
        }));
    }
    let key = match message.context_id.as_deref().filter(|c| !c.is_empty()) {
        Some(context) => SessionKey::new(context.to_owned())
            .map_err(|e| RpcError::invalid_params(format!("message.contextId: {e}")))?,
        None => {
            let fresh = RunId::generate();
            SessionKey::new(format!("a2a-{}", fresh.as_str().trim_start_matches("run_")))
                .map_err(|e| RpcError::internal(e.to_string()))?
        }
    };
    // A context another node holds gets its message there (the caller cannot tell).
    if message.context_id.is_some()
        && !call.onward.forwarded
        && let Some(cluster) = &call.state.cluster
        && let Some(answer) = cluster
            .route(
                &call.state.runtime,
                &tenant,
                &key,
                &axum::http::Method::POST,
                &call.onward.uri,
                &call.onward.headers,
                call.body.clone(),
            )
            .await
            .map_err(RpcError::from)?
    {
        return Ok(Err(answer));
    }
    let (run_id, _events) = call
        .state
        .runtime
        .submit(TurnRequest {
            tenant,
            session_key: key,
            input: body.text,
            origin: Origin::A2a,
            hooks: None,
            model: None,
        })
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?;
    Ok(Ok(Sent {
        run_id,
        answered: None,
    }))
}

/// Answers the question `run` waits on with the message; returns the review answered.
async fn answer(call: &Call, run: &RunRecord, body: &Content) -> Result<ReviewId, RpcError> {
    match run.status {
        RunStatus::AwaitingReview => {}
        RunStatus::Queued | RunStatus::Running => {
            return Err(RpcError::unsupported(format!(
                "task {} is working and asks nothing: wait for it (SubscribeToTask) or cancel it",
                run.run_id
            )));
        }
        other => {
            return Err(RpcError::unsupported(format!(
                "task {} has ended ({}): send a new message in its context (contextId {}) without a taskId",
                run.run_id,
                other.as_str(),
                run.session_key
            )));
        }
    }
    let tenant = call.caller.tenant();
    let pending = pending_reviews(&call.state, tenant, run).await?;
    let Some(review) = pending.into_iter().find(answerable) else {
        return Err(RpcError::unsupported(format!(
            "task {} waits for a human reviewer of this agent's tenant, not for the caller",
            run.run_id
        )));
    };
    let response = response_for(&review, body)?;
    let decision = facio_actors::ReviewDecision {
        response,
        reviewer: Some(format!("a2a:{}", call.caller.identity.subject)),
        comment: None,
        edited_arguments: None,
    };
    call.state
        .runtime
        .decide_review(tenant, &review.id, decision)
        .await
        .map_err(|e| match e {
            facio_actors::ReviewError::Invalid(e) => {
                RpcError::invalid_params(format!("the answer does not fit the question: {e}"))
            }
            facio_actors::ReviewError::Closed(_) => {
                RpcError::unsupported("the question was answered or withdrawn meanwhile")
            }
            other => RpcError::internal(other.to_string()),
        })?;
    Ok(review.id)
}

/// The answer to `review` a message gives: its data part when it has one, else its
/// text read as the question's type asks.
fn response_for(review: &ReviewRecord, body: &Content) -> Result<Value, RpcError> {
    if let Some(data) = &body.data
        && data.is_object()
    {
        return Ok(data.clone());
    }
    let text = body.text.trim();
    Ok(match &review.request.payload {
        ReviewPayload::TextInput(_) => json!({"text": body.text}),
        ReviewPayload::Approval(p) => {
            let options: Vec<(&str, &str)> = p
                .options
                .iter()
                .map(|o| (o.id.as_str(), o.label.as_str()))
                .collect();
            let Some(id) = option_id(text, &options) else {
                return Err(RpcError::invalid_params(format!(
                    "answer with one of: {}",
                    ids(&options)
                )));
            };
            json!({"selectedOption": id})
        }
        ReviewPayload::Selection(p) => {
            let options: Vec<(&str, &str)> = p
                .items
                .iter()
                .map(|i| (i.id.as_str(), i.label.as_str()))
                .collect();
            let mut chosen = Vec::new();
            for wanted in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                let Some(id) = option_id(wanted, &options) else {
                    return Err(RpcError::invalid_params(format!(
                        "{wanted:?} is none of: {}",
                        ids(&options)
                    )));
                };
                chosen.push(id);
            }
            json!({"selectedIds": chosen})
        }
        ReviewPayload::Form(_) | ReviewPayload::Freeform(_) => {
            match serde_json::from_str::<Value>(text) {
                Ok(value) if value.is_object() => value,
                _ => {
                    return Err(RpcError::invalid_params(
                        "this question is a form: answer with a data part holding its fields",
                    ));
                }
            }
        }
    })
}

/// The id of the option (id, label) `wanted` names by id or label, in any case.
fn option_id(wanted: &str, options: &[(&str, &str)]) -> Option<String> {
    options
        .iter()
        .find(|(id, label)| id.eq_ignore_ascii_case(wanted) || label.eq_ignore_ascii_case(wanted))
        .map(|(id, _)| (*id).to_owned())
}

/// The options' ids, for a message saying which there are.
fn ids(options: &[(&str, &str)]) -> String {
    options
        .iter()
        .map(|(id, _)| *id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a wait for `run` is over: it ended, or waits on a question other than
/// the one just answered (or on a human reviewer). `pending`: its pending reviews.
fn settled(run: &RunRecord, pending: &[ReviewRecord], answered: Option<&ReviewId>) -> bool {
    match run.status {
        RunStatus::Queued | RunStatus::Running => false,
        RunStatus::AwaitingReview => pending.iter().any(|r| Some(&r.id) != answered),
        _ => true,
    }
}

async fn load(state: &AppState, tenant: &TenantId, run_id: &RunId) -> Result<RunRecord, RpcError> {
    state
        .runtime
        .store()
        .get_run(tenant, run_id)
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
        .ok_or_else(|| RpcError::task_not_found(run_id.as_str()))
}

/// Waits for the next change of anything, or [`LOOK_AGAIN`].
async fn next_change(notices: &mut tokio::sync::broadcast::Receiver<facio_actors::Notice>) {
    let _ = tokio::time::timeout(LOOK_AGAIN, notices.recv()).await;
}

fn params(call: &Call) -> Result<SendParams, (Value, RpcError)> {
    serde_json::from_value(call.params.clone())
        .map_err(|e| call.fail(RpcError::invalid_params(format!("params: {e}"))))
}

/// `SendMessage`: the task once it settles (done, failed, or waiting for input), or
/// at once with `returnImmediately`.
pub(super) async fn send(call: Call) -> Answer {
    let p = params(&call)?;
    let mut notices = call.state.runtime.notices();
    let sent = match deliver(&call, &p).await.map_err(|e| call.fail(e))? {
        Ok(sent) => sent,
        Err(answered_elsewhere) => return Ok(answered_elsewhere),
    };
    let config = p.configuration.unwrap_or_default();
    let at_once = config.return_immediately == Some(true) || config.blocking == Some(false);
    let tenant = call.caller.tenant().clone();
    let deadline = tokio::time::Instant::now() + BLOCK_FOR;
    let run = loop {
        let run = load(&call.state, &tenant, &sent.run_id)
            .await
            .map_err(|e| call.fail(e))?;
        let pending = pending_reviews(&call.state, &tenant, &run)
            .await
            .map_err(|e| call.fail(e))?;
        if at_once
            || tokio::time::Instant::now() >= deadline
            || settled(&run, &pending, sent.answered.as_ref())
        {
            break (run, pending);
        }
        next_change(&mut notices).await;
    };
    let (run, pending) = run;
    let task = view_with(&call.state, &tenant, &run, config.history_length, &pending)
        .await
        .map_err(|e| call.fail(e))?;
    let result = match call.caller.version {
        Version::V1 => json!({"task": task}),
        Version::V03 => shown(Version::V03, task),
    };
    call.answer(result)
}

/// `SendStreamingMessage`: the task, then its status updates and answer as they come.
pub(super) async fn stream(call: Call) -> Answer {
    let p = params(&call)?;
    let notices = call.state.runtime.notices();
    let sent = match deliver(&call, &p).await.map_err(|e| call.fail(e))? {
        Ok(sent) => sent,
        Err(answered_elsewhere) => return Ok(answered_elsewhere),
    };
    Ok(follow(call, sent.run_id, sent.answered, notices).into_response())
}

#[derive(Deserialize)]
struct SubscribeParams {
    id: String,
}

/// `SubscribeToTask`: a task's updates until it ends or asks for input.
pub(super) async fn subscribe(call: Call) -> Answer {
    let p: SubscribeParams = serde_json::from_value(call.params.clone())
        .map_err(|e| call.fail(RpcError::invalid_params(format!("params: {e}"))))?;
    let notices = call.state.runtime.notices();
    let run = find(&call, &p.id).await.map_err(|e| call.fail(e))?;
    if !matches!(
        run.status,
        RunStatus::Queued | RunStatus::Running | RunStatus::AwaitingReview
    ) {
        return Err(call.fail(RpcError::unsupported(format!(
            "task {} has ended ({}): read it with GetTask",
            run.run_id,
            run.status.as_str()
        ))));
    }
    Ok(follow(call, run.run_id, None, notices).into_response())
}

struct Following {
    call: Call,
    run_id: RunId,
    answered: Option<ReviewId>,
    notices: tokio::sync::broadcast::Receiver<facio_actors::Notice>,
    /// The status last sent, to send only changes.
    last: Option<Value>,
    /// Frames to send before looking again.
    queued: Vec<Value>,
    done: bool,
}

/// The SSE answer: one JSON-RPC response per frame; the stream ends after the task
/// has ended or asks for input.
fn follow(
    call: Call,
    run_id: RunId,
    answered: Option<ReviewId>,
    notices: tokio::sync::broadcast::Receiver<facio_actors::Notice>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let start = Following {
        call,
        run_id,
        answered,
        notices,
        last: None,
        queued: Vec::new(),
        done: false,
    };
    let frames = futures::stream::unfold(start, |mut f| async move {
        loop {
            if !f.queued.is_empty() {
                let frame = f.queued.remove(0);
                return Some((Ok(Event::default().data(frame.to_string())), f));
            }
            if f.done {
                return None;
            }
            match step(&mut f).await {
                Ok(()) => {}
                Err(error) => {
                    f.done = true;
                    let body = json!({"jsonrpc": "2.0", "id": f.call.id, "error": error.body(f.call.caller.version)});
                    return Some((Ok(Event::default().data(body.to_string())), f));
                }
            }
        }
    });
    Sse::new(frames).keep_alive(KeepAlive::default())
}

/// Looks at the run once (after a change, on later calls) and queues what changed.
async fn step(f: &mut Following) -> Result<(), RpcError> {
    let (state, tenant) = (&f.call.state, f.call.caller.tenant().clone());
    let version = f.call.caller.version;
    let first = f.last.is_none();
    if !first {
        next_change(&mut f.notices).await;
    }
    let run = load(state, &tenant, &f.run_id).await?;
    let pending = pending_reviews(state, &tenant, &run).await?;
    let over = settled(&run, &pending, f.answered.as_ref());
    // Updates carry the status and the answer; the history goes with the first frame.
    let history = if first { None } else { Some(0) };
    let task = view_with(state, &tenant, &run, history, &pending).await?;
    let status = task["status"].clone();
    let final_state = over
        && !(run.status == RunStatus::AwaitingReview && status["state"] == "TASK_STATE_WORKING");
    let frame = |event: Value, last: bool| match version {
        Version::V1 => super::result(&f.call.id, event),
        Version::V03 => super::result(&f.call.id, super::v03::event(event, last)),
    };
    if first {
        f.queued.push(frame(json!({"task": task}), false));
        f.last = Some(status.clone());
        if !final_state {
            return Ok(());
        }
    }
    let (task_id, context_id) = (task["id"].clone(), task["contextId"].clone());
    if final_state && let Some(artifacts) = task["artifacts"].as_array() {
        for artifact in artifacts {
            f.queued.push(frame(
                json!({"artifactUpdate": {"taskId": task_id, "contextId": context_id,
                       "artifact": artifact, "append": false, "lastChunk": true}}),
                false,
            ));
        }
    }
    if f.last.as_ref() != Some(&status) || (final_state && !first) {
        f.queued.push(frame(
            json!({"statusUpdate": {"taskId": task_id, "contextId": context_id, "status": status}}),
            final_state,
        ));
        f.last = Some(status);
    }
    f.done = final_state;
    Ok(())
}
