//! A stand-in for Telegram's Bot API, built from its documented shapes
//! (core.telegram.org/bots/api): `POST /bot<token>/<method>` answering
//! `{"ok": true, "result": ...}` (or `{"ok": false, "error_code", "description"}`),
//! `getUpdates` long polling with `offset` and `timeout`, `sendMessage`,
//! `editMessageText` and `answerCallbackQuery`. Tests push users' messages and
//! button presses and read what the bot sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    token: String,
    updates: Mutex<Vec<Value>>,
    next_update: Mutex<i64>,
    next_message: Mutex<i64>,
    /// Every call the bot made but getUpdates: (method, params).
    calls: Mutex<Vec<(String, Value)>>,
    arrived: Notify,
    called: Notify,
}

/// A running stand-in.
pub struct TelegramStandIn {
    shared: Arc<Shared>,
    /// The `apiBase` to configure.
    pub base_url: String,
}

impl TelegramStandIn {
    pub async fn start(token: &str) -> anyhow::Result<TelegramStandIn> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            ..Shared::default()
        });
        let app = Router::new()
            .route("/{bot}/{method}", post(call))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TelegramStandIn { shared, base_url })
    }

    fn push(&self, kind: &str, body: Value) {
        let mut next = self
            .shared
            .next_update
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *next += 1;
        let update = json!({"update_id": *next, kind: body});
        self.shared
            .updates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(update);
        self.shared.arrived.notify_waiters();
    }

    /// A user (`id`, `username`) writes `text` in their private chat with the bot.
    pub fn user_says(&self, id: i64, username: &str, text: &str) {
        let message_id = self.message_id();
        self.push(
            "message",
            json!({"message_id": message_id, "date": 1_800_000_000,
                   "from": {"id": id, "is_bot": false, "first_name": username, "username": username},
                   "chat": {"id": id, "type": "private"}, "text": text}),
        );
    }

    /// A user presses the inline button `data` under the bot's message `message`.
    pub fn user_presses(&self, id: i64, username: &str, message: &Value, data: &str) {
        let query_id = format!("cq{}", self.message_id());
        self.push(
            "callback_query",
            json!({"id": query_id, "from": {"id": id, "is_bot": false, "first_name": username,
                   "username": username}, "message": message, "chat_instance": "1", "data": data}),
        );
    }

    fn message_id(&self) -> i64 {
        let mut next = self
            .shared
            .next_message
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *next += 1;
        *next
    }

    /// The calls the bot made (not counting getUpdates), in order.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (at most `limit`) for a call `pick` takes; returns what it took.
    pub async fn wait_for<T>(
        &self,
        limit: Duration,
        mut pick: impl FnMut(&[(String, Value)]) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let called = self.shared.called.notified();
            if let Some(found) = pick(&self.calls()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, called).await.is_err() {
                return None;
            }
        }
    }
}

async fn call(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    Json(params): Json<Value>,
) -> Json<Value> {
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"}));
    }
    match method.as_str() {
        "getUpdates" => {
            let offset = params["offset"].as_i64().unwrap_or(0);
            let wait = Duration::from_secs(params["timeout"].as_u64().unwrap_or(0));
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let arrived = shared.arrived.notified();
                let ready: Vec<Value> = {
                    let mut updates = shared.updates.lock().unwrap_or_else(|p| p.into_inner());
                    // Confirmed updates (below the offset) are forgotten, as Telegram does.
                    updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    updates.clone()
                };
                if !ready.is_empty() || tokio::time::timeout_at(deadline, arrived).await.is_err() {
                    return Json(json!({"ok": true, "result": ready}));
                }
            }
        }
        "sendMessage" | "editMessageText" => {
            let Some(chat) = params["chat_id"].as_i64() else {
                return Json(json!({"ok": false, "error_code": 400,
                                   "description": "Bad Request: chat_id is required"}));
            };
            if params["text"].as_str().is_none_or(|t| t.is_empty()) {
                return Json(json!({"ok": false, "error_code": 400,
                                   "description": "Bad Request: message text is empty"}));
            }
            let message_id = if method == "sendMessage" {
                let mut next = shared
                    .next_message
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                *next += 1;
                *next
            } else {
                params["message_id"].as_i64().unwrap_or(0)
            };
            let mut recorded = params.clone();
            recorded["message_id"] = json!(message_id);
            record(&shared, &method, recorded);
            let mut message = json!({"message_id": message_id, "date": 1_800_000_000,
                "chat": {"id": chat, "type": "private"}, "text": params["text"]});
            if let Some(markup) = params.get("reply_markup") {
                message["reply_markup"] = markup.clone();
            }
            Json(json!({"ok": true, "result": message}))
        }
        "answerCallbackQuery" => {
            record(&shared, &method, params);
            Json(json!({"ok": true, "result": true}))
        }
        _ => Json(json!({"ok": false, "error_code": 404, "description": "Not Found"})),
    }
}

fn record(shared: &Shared, method: &str, params: Value) {
    shared
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((method.to_owned(), params));
    shared.called.notify_waiters();
}
