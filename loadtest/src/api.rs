//! The few gateway calls the scenarios make, with the management token.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One gateway (or one node of a cluster) and the bearer token it takes.
#[derive(Clone)]
pub struct Gateway {
    pub url: String,
    token: Option<String>,
    client: reqwest::Client,
}

/// A turn's answer: the status, the node that ran it and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub node: Option<String>,
    pub run_id: Option<String>,
    pub body: Value,
}

impl Gateway {
    pub fn new(url: &str, token: Option<String>, client: reqwest::Client) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
            client,
        }
    }

    /// A client for `pool` connections per host, answering within `timeout`.
    pub fn client(pool: usize, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .timeout(timeout)
            .build()?)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value, String> {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}"))
    }

    /// One non-streaming chat turn for `session`.
    pub async fn chat(&self, session: &str, content: &str) -> Result<Answer, String> {
        let response = self
            .request(reqwest::Method::POST, "/v1/chat/completions")
            .header("X-Session-Key", session)
            .json(
                &json!({"model": "scripted-1", "messages": [{"role": "user", "content": content}]}),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (node, run_id) = (header("x-facio-node"), header("x-facio-run-id"));
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            node,
            run_id,
            body,
        })
    }

    /// The sessions this gateway holds in memory (`activeSessions` of `/health`).
    pub async fn active_sessions(&self) -> Option<u64> {
        self.get_json("/health").await.ok()?["activeSessions"].as_u64()
    }
}

impl Answer {
    /// The assistant's text of a completed chat turn.
    pub fn content(&self) -> Option<&str> {
        self.body
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
    }
}

/// Polls `check` every `every` until it gives `Some`, for at most `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Server-sent events read off a response as they arrive, each with its arrival time.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

/// One event: its name (`message` when unnamed), data and when it was read.
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub data: String,
    pub at: Instant,
}

impl Events {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> Result<Option<Event>, String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block) {
                    return Ok(Some(event));
                }
                continue;
            }
            match self.response.chunk().await.map_err(|e| e.to_string())? {
                Some(bytes) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }
}

/// One SSE block; `None` for a comment (keep-alive) or an empty one.
fn parse_event(block: &str) -> Option<Event> {
    let mut name = None;
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if name.is_none() && data.is_empty() {
        return None;
    }
    Some(Event {
        name: name.unwrap_or_else(|| "message".to_owned()),
        data: data.join("\n"),
        at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_named_events_and_skips_comments() {
        let event = super::parse_event("event: end\ndata: {\"a\":1}\n\n").unwrap();
        assert_eq!(
            (event.name.as_str(), event.data.as_str()),
            ("end", "{\"a\":1}")
        );
        let event = super::parse_event("data:x\ndata: y\n\n").unwrap();
        assert_eq!(
            (event.name.as_str(), event.data.as_str()),
            ("message", "x\ny")
        );
        assert!(super::parse_event(":\n\n").is_none());
    }
}
