//! Telegram channels (`channels.telegram.<name>`): one task per bot long-polls
//! `getUpdates`. A text message from a user on `allowFrom` is a turn of the chat's
//! session; its answer is a streamed draft (`sendMessage`, then `editMessageText` as
//! the text comes, at most once a second, and with the final answer). A review the
//! turn stops at is posted as a message with an inline keyboard of its options; a
//! press by a user on `reviewers` decides it (recorded as `telegram:<user>`), anyone
//! else's is refused. The bot token is in every Bot API URL, so no error message names
//! a URL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use facio_actors::{Origin, ReviewDecision, Runtime, TurnEvent, TurnRequest};
use facio_services::config::TelegramChannel;
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::review::{ReviewId, ReviewPayload};
use facio_services::store::{
    AuditEventKind, Change, NewAuditEvent, ReviewFilter, ReviewStatus, RunStatus,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Shortest time between two edits of a draft (Telegram limits edits per chat).
const EDIT_EVERY: Duration = Duration::from_secs(1);
/// Telegram's longest message.
const TEXT_MAX: usize = 4096;
/// Longest the bot follows one turn for its answer.
const FOLLOW_FOR: Duration = Duration::from_secs(24 * 3600);

/// Starts one poller per configured bot; they stop when `stop` is cancelled.
pub(crate) fn start(runtime: &Arc<Runtime>, stop: &CancellationToken) {
    for (name, channel) in &runtime.config().channels.telegram {
        let bot = Arc::new(Bot {
            name: name.clone(),
            channel: channel.clone(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            runtime: runtime.clone(),
        });
        let stop = stop.clone();
        tokio::spawn(async move { bot.poll(stop).await });
    }
}

struct Bot {
    name: String,
    channel: TelegramChannel,
    http: reqwest::Client,
    runtime: Arc<Runtime>,
}

impl Bot {
    fn tenant(&self) -> TenantId {
        self.channel
            .tenant
            .clone()
            .and_then(|t| TenantId::new(t).ok())
            .unwrap_or_else(TenantId::default_tenant)
    }

    /// One Bot API call; `result` of `{ok: true, result}`.
    async fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        let url = format!(
            "{}/bot{}/{method}",
            self.channel.api_base.trim_end_matches('/'),
            self.channel.bot_token
        );
        let response = self
            .http
            .post(url)
            .json(&params)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| facio_services::channels::describe(&e.without_url()))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("{method}: HTTP {status}, not JSON ({})", e.without_url()))?;
        if body["ok"] == true {
            Ok(body["result"].clone())
        } else {
            Err(format!(
                "{method}: {}",
                body["description"].as_str().unwrap_or("refused")
            ))
        }
    }

    async fn poll(self: Arc<Self>, stop: CancellationToken) {
        let mut offset: i64 = 0;
        let mut backoff = Duration::from_millis(500);
        let wait = Duration::from_secs(self.channel.poll_timeout_s);
        loop {
            let params = json!({"offset": offset, "timeout": self.channel.poll_timeout_s,
                                "allowed_updates": ["message", "callback_query"]});
            let updates = tokio::select! {
                () = stop.cancelled() => return,
                got = self.call("getUpdates", params, wait + Duration::from_secs(10)) => got,
            };
            let updates = match updates {
                Ok(Value::Array(updates)) => {
                    backoff = Duration::from_millis(500);
                    updates
                }
                Ok(_) => Vec::new(),
                Err(e) => {
                    tracing::warn!(channel = %self.name, error = %e, "Telegram getUpdates failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
            };
            for update in updates {
                if let Some(id) = update["update_id"].as_i64() {
                    offset = offset.max(id + 1);
                }
                if update.get("message").is_some() {
                    let bot = self.clone();
                    tokio::spawn(async move { bot.message(&update["message"]).await });
                } else if update.get("callback_query").is_some() {
                    self.pressed(&update["callback_query"]).await;
                }
            }
        }
    }

    async fn record(&self, data: Value) {
        let tenant = self.tenant();
        let event = NewAuditEvent {
            kind: AuditEventKind::ChannelMessage,
            session_key: None,
            run_id: None,
            actor: "channel".to_owned(),
            data,
        };
        if let Err(e) = self
            .runtime
            .store()
            .apply_change(&tenant, Change::Record, vec![(tenant.clone(), event)])
            .await
        {
            tracing::error!(error = %e, "could not record a Telegram message");
        }
    }

    /// A user's message: a turn, answered in a draft that grows as the text comes.
    async fn message(&self, message: &Value) {
        let (Some(chat), Some(text)) = (message["chat"]["id"].as_i64(), message["text"].as_str())
        else {
            return;
        };
        let from = message["from"]["id"].as_i64().unwrap_or_default();
        let username = message["from"]["username"].as_str();
        let sender = username.map_or_else(|| from.to_string(), str::to_owned);
        let id = message["message_id"].as_i64().unwrap_or_default();
        if !TelegramChannel::lists(&self.channel.allow_from, from, username) {
            self.record(
                json!({"channel": self.name, "from": sender, "id": id, "accepted": false,
                               "reason": "the sender is not on allowFrom"}),
            )
            .await;
            let _ = self
                .call(
                    "sendMessage",
                    json!({"chat_id": chat, "text": "You are not allowed to use this bot."}),
                    Duration::from_secs(15),
                )
                .await;
            return;
        }
        let tenant = self.tenant();
        let Ok(session) = SessionKey::new(format!("telegram-{}-{chat}", self.name)) else {
            return;
        };
        let submitted = self
            .runtime
            .submit(TurnRequest {
                tenant: tenant.clone(),
                session_key: session.clone(),
                input: text.to_owned(),
                origin: Origin::Channel,
                hooks: None,
                model: None,
            })
            .await;
        let (run_id, mut events) = match submitted {
            Ok(submitted) => submitted,
            Err(e) => {
                let _ = self
                    .call(
                        "sendMessage",
                        json!({"chat_id": chat, "text": format!("Not now: {e}")}),
                        Duration::from_secs(15),
                    )
                    .await;
                return;
            }
        };
        self.record(
            json!({"channel": self.name, "from": sender, "id": id, "accepted": true,
                           "runId": run_id, "sessionKey": session}),
        )
        .await;
        let draft = self
            .call(
                "sendMessage",
                json!({"chat_id": chat, "text": "…"}),
                Duration::from_secs(15),
            )
            .await
            .ok()
            .and_then(|m| m["message_id"].as_i64());
        let mut text = String::new();
        let mut shown = String::new();
        let mut edited = Instant::now();
        let mut carded: HashSet<ReviewId> = HashSet::new();
        while let Some(event) = events.recv().await {
            match event {
                TurnEvent::TextDelta(delta) => {
                    text.push_str(&delta);
                    if edited.elapsed() >= EDIT_EVERY && text != shown {
                        self.edit(chat, draft, &text).await;
                        shown.clone_from(&text);
                        edited = Instant::now();
                    }
                }
                TurnEvent::ReviewPending { review_id, .. } if carded.insert(review_id.clone()) => {
                    self.card(&tenant, chat, &review_id).await;
                }
                TurnEvent::Finished(_) => break,
                _ => {}
            }
        }
        // The run may go on after a review: follow it to its end.
        let answer = self.follow(&tenant, &run_id, chat, &mut carded).await;
        self.edit(chat, draft, &answer).await;
    }

    /// Waits until `run_id` ends (carding reviews it opens on the way); its answer.
    async fn follow(
        &self,
        tenant: &TenantId,
        run_id: &RunId,
        chat: i64,
        carded: &mut HashSet<ReviewId>,
    ) -> String {
        let store = self.runtime.store();
        let mut notices = self.runtime.notices();
        let deadline = tokio::time::Instant::now() + FOLLOW_FOR;
        loop {
            match store.get_run(tenant, run_id).await {
                Ok(Some(run)) => match run.status {
                    RunStatus::Completed => return run.content.unwrap_or_default(),
                    RunStatus::Queued | RunStatus::Running | RunStatus::AwaitingReview => {}
                    other => {
                        return format!("The turn ended {}.", other.as_str().replace('_', " "));
                    }
                },
                Ok(None) => return String::new(),
                Err(e) => tracing::warn!(error = %e, "reading a Telegram turn"),
            }
            let pending = store
                .list_reviews(
                    tenant,
                    &ReviewFilter {
                        status: Some(ReviewStatus::Pending),
                        run_id: Some(run_id.clone()),
                        ..ReviewFilter::default()
                    },
                )
                .await
                .unwrap_or_default();
            for review in pending {
                if carded.insert(review.id.clone()) {
                    self.card(tenant, chat, &review.id).await;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return "The turn is still waiting.".to_owned();
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), notices.recv()).await;
        }
    }

    async fn edit(&self, chat: i64, draft: Option<i64>, text: &str) {
        let text: String = if text.trim().is_empty() {
            "(no answer)".to_owned()
        } else {
            text.chars().take(TEXT_MAX).collect()
        };
        let sent = match draft {
            Some(message_id) => {
                self.call(
                    "editMessageText",
                    json!({"chat_id": chat, "message_id": message_id, "text": text}),
                    Duration::from_secs(15),
                )
                .await
            }
            None => {
                self.call(
                    "sendMessage",
                    json!({"chat_id": chat, "text": text}),
                    Duration::from_secs(15),
                )
                .await
            }
        };
        if let Err(e) = sent {
            tracing::warn!(channel = %self.name, error = %e, "a Telegram answer was not shown");
        }
    }

    /// Posts a review: its title and description, and for an approval with reviewers
    /// configured, a button per option.
    async fn card(&self, tenant: &TenantId, chat: i64, id: &ReviewId) {
        let Ok(Some(review)) = self.runtime.store().get_review(tenant, id).await else {
            return;
        };
        let request = &review.request;
        let mut text = format!("Review needed: {}", request.title);
        if let Some(description) = &request.description {
            text.push_str("\n\n");
            text.push_str(description);
        }
        let text: String = text.chars().take(TEXT_MAX).collect();
        let mut params = json!({"chat_id": chat, "text": text});
        match &request.payload {
            ReviewPayload::Approval(approval) if !self.channel.reviewers.is_empty() => {
                let buttons: Vec<Value> = approval
                    .options
                    .iter()
                    .enumerate()
                    .map(|(i, option)| {
                        json!({"text": option.label, "callback_data": format!("{}|{i}", id.as_str())})
                    })
                    .collect();
                params["reply_markup"] = json!({"inline_keyboard": [buttons]});
            }
            _ => {
                params["text"] = json!(format!("{text}\n\n(Answer it in the review inbox.)"));
            }
        }
        if let Err(e) = self
            .call("sendMessage", params, Duration::from_secs(15))
            .await
        {
            tracing::warn!(channel = %self.name, error = %e, "a Telegram review card was not sent");
        }
    }

    /// A button press: the option it names decides the review, if a reviewer pressed.
    async fn pressed(&self, query: &Value) {
        let query_id = query["id"].as_str().unwrap_or_default().to_owned();
        let data = query["data"].as_str().unwrap_or_default();
        let from = query["from"]["id"].as_i64().unwrap_or_default();
        let username = query["from"]["username"].as_str();
        let who = username.map_or_else(|| from.to_string(), str::to_owned);
        let answer = |text: String| json!({"callback_query_id": query_id, "text": text.chars().take(200).collect::<String>()});
        if !TelegramChannel::lists(&self.channel.reviewers, from, username) {
            let _ = self
                .call(
                    "answerCallbackQuery",
                    answer(format!("{who} may not decide reviews here")),
                    Duration::from_secs(15),
                )
                .await;
            return;
        }
        let Some((review, index)) = data.split_once('|') else {
            return;
        };
        let tenant = self.tenant();
        let Ok(review_id) = review.parse::<ReviewId>() else {
            return;
        };
        let Ok(Some(record)) = self.runtime.store().get_review(&tenant, &review_id).await else {
            return;
        };
        let ReviewPayload::Approval(approval) = &record.request.payload else {
            return;
        };
        let Some(option) = index
            .parse::<usize>()
            .ok()
            .and_then(|i| approval.options.get(i))
        else {
            return;
        };
        let decided = self
            .runtime
            .decide_review(
                &tenant,
                &review_id,
                ReviewDecision {
                    response: json!({"selectedOption": option.id}),
                    reviewer: Some(format!("telegram:{who}")),
                    comment: None,
                    edited_arguments: None,
                },
            )
            .await;
        let said = match decided {
            Ok(_) => format!("{}: {}", option.label, record.request.title),
            Err(e) => e.to_string(),
        };
        let _ = self
            .call(
                "answerCallbackQuery",
                answer(said.clone()),
                Duration::from_secs(15),
            )
            .await;
        if let (Some(chat), Some(message_id)) = (
            query["message"]["chat"]["id"].as_i64(),
            query["message"]["message_id"].as_i64(),
        ) {
            let _ = self
                .call(
                    "editMessageText",
                    json!({"chat_id": chat, "message_id": message_id,
                           "text": format!("{said} (by {who})")}),
                    Duration::from_secs(15),
                )
                .await;
        }
    }
}
