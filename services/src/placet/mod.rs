//! A client for Placet's agent API (`shared/contracts/placet.md`, section 1): post a
//! message carrying a review, long-poll for the human's answer, register the
//! management URL. Field names are Placet's, exactly.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::review::ReviewRequest;

/// Why a Placet call failed.
#[derive(Debug, thiserror::Error)]
pub enum PlacetError {
    #[error("cannot reach Placet: {0}")]
    Http(#[from] reqwest::Error),
    #[error("Placet answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Placet's answer has no {0}")]
    Shape(&'static str),
}

/// What a long-poll returned.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    /// A human answered; the review's `response`.
    Completed(Value),
    /// Nothing yet; poll again.
    Pending,
    /// Placet expired the review.
    Expired,
}

#[derive(Debug, Clone)]
pub struct PlacetClient {
    http: reqwest::Client,
    base: String,
    api_key: String,
    channel: String,
}

impl PlacetClient {
    pub fn new(instance_url: &str, api_key: &str, channel: &str) -> Result<Self, PlacetError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(45))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base: instance_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            channel: channel.to_owned(),
        })
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, PlacetError> {
        let response = request.header("x-api-key", &self.api_key).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(PlacetError::Status {
                status: status.as_u16(),
                body: text.chars().take(500).collect(),
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST /api/v1/messages`; Placet's id for the message.
    async fn post_message(&self, body: &Value) -> Result<String, PlacetError> {
        let answer = self
            .send(
                self.http
                    .post(format!("{}/api/v1/messages", self.base))
                    .json(body),
            )
            .await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or(PlacetError::Shape("message id"))
    }

    /// `POST /api/v1/messages` with the review; returns Placet's message id.
    pub async fn post_review(
        &self,
        request: &ReviewRequest,
        metadata: Value,
    ) -> Result<String, PlacetError> {
        let body = json!({
            "channelId": self.channel,
            "text": request.message_text(),
            "status": "warning",
            "metadata": metadata,
            "review": request.to_placet_review(),
        });
        self.post_message(&body).await
    }

    /// `POST /api/v1/messages` with `text` only (an answer to a user's message).
    pub async fn post_text(&self, text: &str, status: &str) -> Result<String, PlacetError> {
        let body = json!({"channelId": self.channel, "text": text, "status": status});
        self.post_message(&body).await
    }

    /// `GET /api/v1/reviews/:id/wait?channel=ID&timeout=ms`.
    pub async fn wait(
        &self,
        message_id: &str,
        timeout: Duration,
    ) -> Result<WaitOutcome, PlacetError> {
        let millis = timeout.as_millis().min(30_000);
        let url = format!(
            "{}/api/v1/reviews/{message_id}/wait?channel={}&timeout={millis}",
            self.base, self.channel
        );
        let answer = self.send(self.http.get(url)).await?;
        #[derive(Deserialize)]
        struct Wait {
            status: String,
        }
        let wait: Wait =
            serde_json::from_value(answer.clone()).map_err(|_| PlacetError::Shape("status"))?;
        Ok(match wait.status.as_str() {
            "completed" => WaitOutcome::Completed(answer["message"]["review"]["response"].clone()),
            "expired" => WaitOutcome::Expired,
            _ => WaitOutcome::Pending,
        })
    }

    /// `POST /api/v1/agents/setWebhook`: tells Placet where this agent's management
    /// API is, so its dashboard can proxy to it.
    pub async fn register(
        &self,
        management_url: &str,
        management_token: &str,
    ) -> Result<(), PlacetError> {
        let body = json!({
            "channelId": self.channel,
            "url": format!("{}/api/v1/placet/webhook", management_url.trim_end_matches('/')),
            // Placet signs nothing: its webhook calls carry this header, which the
            // management API checks like any caller's.
            "headers": {"Authorization": format!("Bearer {management_token}")},
            "management": {"url": management_url, "apiKey": management_token},
            "isSubagent": false,
            "parentChannelId": null,
        });
        self.send(
            self.http
                .post(format!("{}/api/v1/agents/setWebhook", self.base))
                .json(&body),
        )
        .await
        .map(|_| ())
    }
}
