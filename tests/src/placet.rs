//! A Placet stand-in built strictly from `shared/contracts/placet.md` (section 1): the
//! agent-side REST calls Facio makes, with the `x-api-key` check. Tests read what
//! Facio posted and answer reviews as a Placet user would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

#[derive(Default)]
struct Data {
    messages: Vec<Value>,
    registrations: Vec<Value>,
    answers: HashMap<String, Value>,
}

struct Shared {
    api_key: String,
    data: Mutex<Data>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// A running stand-in; dropping it stops the server.
pub struct PlacetStandIn {
    shared: Arc<Shared>,
    port: u16,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PlacetStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl PlacetStandIn {
    pub async fn start(api_key: &str) -> anyhow::Result<PlacetStandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the Placet stand-in")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            data: Mutex::new(Data::default()),
            changed: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/api/v1/messages", post(post_message))
            .route("/api/v1/reviews/{id}/wait", get(wait))
            .route("/api/v1/agents/setWebhook", post(set_webhook))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(PlacetStandIn {
            shared,
            port,
            server,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every message Facio posted, with the id this stand-in gave it (`id`).
    pub fn messages(&self) -> Vec<Value> {
        self.shared.data().messages.clone()
    }

    pub fn registrations(&self) -> Vec<Value> {
        self.shared.data().registrations.clone()
    }

    /// Waits until at least `n` messages were posted.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        let mut changed = self.shared.changed.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                if self.shared.data().messages.len() >= n {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .context("Facio did not post to Placet in time")?;
        Ok(self.messages())
    }

    /// A Placet user answers the review of `message_id`.
    pub fn answer(&self, message_id: &str, response: Value) {
        self.shared
            .data()
            .answers
            .insert(message_id.to_owned(), response);
        self.shared.bump();
    }
}

/// `None` when the request carries the right `x-api-key`, else the 401 to send.
fn refused(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(key) if key == shared.api_key => None,
        _ => Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid or missing x-api-key"})),
            )
                .into_response(),
        ),
    }
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

async fn post_message(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(denied) = refused(&shared, &headers) {
        return denied;
    }
    if !body["channelId"].is_string() || !body["text"].is_string() {
        return bad("channelId and text are required");
    }
    if let Some(status) = body.get("status").and_then(Value::as_str)
        && !["info", "success", "warning", "error"].contains(&status)
    {
        return bad("status must be info, success, warning or error");
    }
    let review = &body["review"];
    let known = ["approval", "selection", "form", "text-input", "freeform"];
    if !review.is_null()
        && (!review["type"].as_str().is_some_and(|t| known.contains(&t))
            || !review["payload"].is_object())
    {
        return bad("review needs a known type and a payload object");
    }
    if review["expiresInSeconds"]
        .as_u64()
        .is_some_and(|s| s > 36 * 3600)
    {
        return bad("expiresInSeconds may be at most 36 hours");
    }
    let id = {
        let mut data = shared.data();
        let id = format!("msg_{}", data.messages.len() + 1);
        let mut stored = body.clone();
        stored["id"] = json!(id);
        data.messages.push(stored);
        id
    };
    shared.bump();
    let answer = if review.is_null() {
        json!({"id": id})
    } else {
        json!({"id": id, "review": {"status": "pending"}})
    };
    Json(answer).into_response()
}

#[derive(Deserialize)]
struct WaitQuery {
    channel: Option<String>,
    timeout: Option<u64>,
}

async fn wait(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    if let Some(denied) = refused(&shared, &headers) {
        return denied;
    }
    if q.channel.is_none() {
        return bad("channel is required");
    }
    let timeout = Duration::from_millis(q.timeout.unwrap_or(30_000).min(30_000));
    let mut changed = shared.changed.subscribe();
    let found = tokio::time::timeout(timeout, async {
        loop {
            if let Some(response) = shared.data().answers.get(&id).cloned() {
                return Some(response);
            }
            if changed.changed().await.is_err() {
                return None;
            }
        }
    })
    .await
    .ok()
    .flatten();
    match found {
        Some(response) => Json(json!({"status": "completed", "message": {"id": id, "review": {"status": "completed", "response": response}}})).into_response(),
        None => Json(json!({"status": "timeout"})).into_response(),
    }
}

async fn set_webhook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(denied) = refused(&shared, &headers) {
        return denied;
    }
    // Placet's SetWebhookSchema: `url` (required), `headers`, `auth`, `management`.
    if !body["channelId"].is_string() || !body["url"].is_string() {
        return bad("channelId and url are required");
    }
    shared.data().registrations.push(body);
    shared.bump();
    Json(json!({"ok": true})).into_response()
}
