//! A scripted HTTP server: answers each request with the next prepared reply and
//! records what it was sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::providers::{CallLimits, RetryPolicy};

/// What the server answers one request with.
pub(super) enum Reply {
    Json {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: Value,
    },
    /// An event stream sent as these chunks; with `hang` the connection then stays
    /// open without another byte.
    Stream { chunks: Vec<String>, hang: bool },
    /// Never answers, not even with headers.
    Stall,
}

impl Reply {
    pub(super) fn ok(body: Value) -> Self {
        Self::Json {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    pub(super) fn error(status: u16, message: &str) -> Self {
        Self::Json {
            status,
            headers: Vec::new(),
            body: serde_json::json!({ "error": { "message": message, "type": "test_error" } }),
        }
    }

    pub(super) fn stream(chunks: Vec<String>) -> Self {
        Self::Stream {
            chunks,
            hang: false,
        }
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Recorded {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

pub(super) struct ScriptedServer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    script: Arc<Script>,
}

impl ScriptedServer {
    pub(super) async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            requests: Mutex::default(),
        });
        let app = Router::new().fallback(answer).with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            script,
        }
    }

    pub(super) fn requests(&self) -> Vec<Recorded> {
        self.script.requests.lock().expect("lock").clone()
    }
}

async fn answer(
    State(script): State<Arc<Script>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.requests.lock().expect("lock").push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = script.replies.lock().expect("lock").pop_front();
    match reply {
        None => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("the test script has no reply left"))
            .expect("response"),
        Some(Reply::Json {
            status,
            headers,
            body,
        }) => {
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response
                .body(Body::from(body.to_string()))
                .expect("response")
        }
        Some(Reply::Stream { chunks, hang }) => {
            let chunks = futures::stream::iter(
                chunks
                    .into_iter()
                    .map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk))),
            );
            let body = if hang {
                Body::from_stream(chunks.chain(futures::stream::pending()))
            } else {
                Body::from_stream(chunks)
            };
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .expect("response")
        }
        Some(Reply::Stall) => futures::future::pending().await,
    }
}

/// Short limits so failure paths finish quickly.
pub(super) fn limits(timeout: Duration, max_retries: u32) -> CallLimits {
    CallLimits {
        timeout,
        retry: RetryPolicy {
            max_retries,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(200),
        },
    }
}
