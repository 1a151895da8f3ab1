//! The scripted model's HTTP server and what it records.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use super::reply::Reply;
use super::wire::{self, Answer, Call};

/// A request the scripted model received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn messages(&self) -> Vec<Value> {
        self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn stream(&self) -> bool {
        self.body["stream"].as_bool().unwrap_or(false)
    }

    pub fn tools(&self) -> Vec<Value> {
        self.body["tools"].as_array().cloned().unwrap_or_default()
    }

    /// The names of the tools offered in this request.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools()
            .iter()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

enum Script {
    Replies(VecDeque<Reply>),
    /// The same answer to every request; with `tool`, a call of that tool (no
    /// arguments) first whenever the conversation ends with the user's message.
    Fixed {
        content: String,
        latency: Duration,
        tool: Option<String>,
    },
}

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<Vec<RecordedRequest>>,
    count: watch::Sender<usize>,
}

/// A running scripted model; dropping it stops the server.
pub struct ScriptedModel {
    shared: Arc<Shared>,
    port: u16,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the script from the next assertion.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ScriptedModel {
    /// Answers requests with `replies`, in order.
    pub async fn start(replies: Vec<Reply>) -> anyhow::Result<ScriptedModel> {
        Self::serve(Script::Replies(replies.into()), 0).await
    }

    /// Answers every request with `content` after `latency` (for load tests).
    pub async fn start_fixed(content: &str, latency: Duration) -> anyhow::Result<ScriptedModel> {
        Self::start_fixed_on(content, latency, 0).await
    }

    /// Like [`ScriptedModel::start_fixed`] on a given port (0 picks a free one).
    pub async fn start_fixed_on(
        content: &str,
        latency: Duration,
        port: u16,
    ) -> anyhow::Result<ScriptedModel> {
        Self::start_fixed_with_tool(content, None, latency, port).await
    }

    /// [`Self::start_fixed_on`], calling `tool` once per turn before answering.
    pub async fn start_fixed_with_tool(
        content: &str,
        tool: Option<&str>,
        latency: Duration,
        port: u16,
    ) -> anyhow::Result<ScriptedModel> {
        let script = Script::Fixed {
            content: content.to_owned(),
            latency,
            tool: tool.map(str::to_owned),
        };
        Self::serve(script, port).await
    }

    async fn serve(script: Script, port: u16) -> anyhow::Result<ScriptedModel> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .context("bind the scripted model")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            requests: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .route("/v1/models", get(|| async { Json(wire::models()) }))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("scripted model stopped: {e}");
            }
        });
        Ok(ScriptedModel {
            shared,
            port,
            server,
        })
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let mut count = self.shared.count.subscribe();
        tokio::time::timeout(timeout, count.wait_for(|c| *c >= n))
            .await
            .with_context(|| {
                format!(
                    "the scripted model received {} of {n} requests in {timeout:?}",
                    lock(&self.shared.requests).len()
                )
            })?
            .context("the scripted model stopped")?;
        Ok(())
    }
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let recorded = RecordedRequest {
        body: body.clone(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
    };
    let (reply, n) = {
        let mut requests = lock(&shared.requests);
        requests.push(recorded);
        let n = requests.len();
        let reply = match &mut *lock(&shared.script) {
            Script::Replies(queue) => queue.pop_front().map(|r| r.filled(&body)),
            Script::Fixed {
                content,
                latency,
                tool,
            } => {
                let after_user = body["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .is_some_and(|m| m["role"] == "user");
                let reply = match tool {
                    // `NAME` or `NAME {JSON arguments}`.
                    Some(tool) if after_user => {
                        let (name, arguments) = tool.split_once(' ').unwrap_or((tool, "{}"));
                        let arguments = serde_json::from_str(arguments)
                            .unwrap_or_else(|_| serde_json::json!({}));
                        Reply::tool_call(name, arguments)
                    }
                    _ => Reply::text(content.clone()),
                };
                Some(reply.delayed(*latency))
            }
        };
        (reply, n)
    };
    shared.count.send_replace(n);
    let Some(reply) = reply else {
        return error_response(500, "the scripted model has no reply left", None);
    };
    if let Some(delay) = reply.delay().filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
    let model = body["model"].as_str().unwrap_or("scripted").to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let id = format!("chatcmpl-scripted{n}");
    let answer = match reply {
        Reply::Text { content, .. } => Answer::Text(content),
        Reply::ToolCall {
            name, arguments, ..
        }
        | Reply::ToolCallFromResult { name, arguments } => Answer::Calls(vec![Call {
            id: format!("call_{n}"),
            name,
            arguments: arguments.to_string(),
        }]),
        Reply::ToolCalls(calls) => Answer::Calls(
            calls
                .into_iter()
                .enumerate()
                .map(|(i, (name, arguments))| Call {
                    id: format!("call_{n}_{i}"),
                    name,
                    arguments: arguments.to_string(),
                })
                .collect(),
        ),
        Reply::ToolCallWithId {
            id,
            name,
            arguments,
        } => Answer::Calls(vec![Call {
            id,
            name,
            arguments: arguments.to_string(),
        }]),
        Reply::ToolCallsWithIds(calls) => Answer::Calls(
            calls
                .into_iter()
                .map(|(id, name, arguments)| Call {
                    id,
                    name,
                    arguments: arguments.to_string(),
                })
                .collect(),
        ),
        Reply::RawToolCall { name, arguments } => Answer::Calls(vec![Call {
            id: format!("call_{n}"),
            name,
            arguments,
        }]),
        Reply::Error {
            status,
            message,
            retry_after,
        } => return error_response(status, &message, retry_after),
        Reply::Hang => std::future::pending().await,
        Reply::HangMidStream(text) => {
            if !stream {
                return std::future::pending().await;
            }
            let first = [
                wire::chunk(
                    &id,
                    &model,
                    serde_json::json!({"role": "assistant", "content": ""}),
                    None,
                ),
                wire::chunk(&id, &model, serde_json::json!({"content": text}), None),
            ];
            let events = futures::stream::iter(first.map(|c| Ok::<_, Infallible>(sse(&c))))
                .chain(futures::stream::pending());
            return sse_response(Body::from_stream(events));
        }
    };
    let usage = wire::usage(&body["messages"], &answer);
    if !stream {
        return Json(wire::completion(&id, &model, &answer, usage)).into_response();
    }
    let finish = match answer {
        Answer::Text(_) => "stop",
        Answer::Calls(_) => "tool_calls",
    };
    let mut events = vec![sse(&wire::chunk(
        &id,
        &model,
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    ))];
    events.extend(
        wire::deltas(&answer)
            .into_iter()
            .map(|d| sse(&wire::chunk(&id, &model, d, None))),
    );
    events.push(sse(&wire::chunk(
        &id,
        &model,
        serde_json::json!({}),
        Some(finish),
    )));
    if include_usage {
        events.push(sse(&wire::usage_chunk(&id, &model, usage)));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body = futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
    sse_response(Body::from_stream(body))
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn sse_response(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn error_response(status: u16, message: &str, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, Json(wire::error(status, message))).into_response();
    if let Some(seconds) = retry_after
        && let Ok(value) = seconds.to_string().parse()
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
