//! The A2A v1.0 wire as a caller speaks it: reading a peer's card, one blocking
//! `SendMessage`, and reading the task (or message) it answers with.

use std::time::Duration;

use serde_json::{Value, json};

/// Why a peer could not be reached or answered nonsense.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the peer did not answer within {0}s")]
    Timeout(u64),
    #[error("could not reach the peer: {0}")]
    Unreachable(String),
    #[error("the peer refused our credentials (HTTP {0})")]
    Refused(u16),
    #[error("the peer answered HTTP {0}: {1}")]
    Http(u16, String),
    #[error("the peer answered error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("the peer's answer is not A2A: {0}")]
    Invalid(String),
}

/// A peer's card, and where its JSON-RPC endpoint is.
#[derive(Debug, Clone)]
pub struct Card {
    pub card: Value,
    pub name: String,
    pub endpoint: String,
    /// The protocol version the endpoint speaks (`1.0`, or `0.3` for older cards).
    pub version: String,
}

/// What a peer answered, as `call_agent` reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerReply {
    /// `completed`, `input-required`, `failed`, `working`, ... (`message` for a reply
    /// that is a message, not a task).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// The text of the task's artifacts (or of the message).
    pub answer: String,
    /// The status message (for `input-required`: the peer's question).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

impl PeerReply {
    pub fn needs_input(&self) -> bool {
        self.state == "input-required"
    }
}

/// Fetches and reads the card at `url`.
pub async fn fetch_card(http: &reqwest::Client, url: &str) -> Result<Card, PeerError> {
    let response = http
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(PeerError::Http(status, "for the agent card".into()));
    }
    let card: Value = response
        .json()
        .await
        .map_err(|e| PeerError::Invalid(format!("the card is not JSON: {e}")))?;
    read_card(card, url)
}

fn read_card(card: Value, url: &str) -> Result<Card, PeerError> {
    let name = card
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| PeerError::Invalid("the card has no name".into()))?
        .to_owned();
    let interfaces = card
        .get("supportedInterfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let jsonrpc = |i: &&Value| {
        i.get("protocolBinding").and_then(Value::as_str) == Some("JSONRPC")
            && i.get("url").and_then(Value::as_str).is_some()
    };
    let chosen = interfaces
        .iter()
        .filter(jsonrpc)
        .find(|i| i.get("protocolVersion").and_then(Value::as_str) == Some("1.0"))
        .or_else(|| interfaces.iter().find(jsonrpc));
    let (endpoint, version) = match chosen {
        Some(i) => (
            i["url"].as_str().unwrap_or_default().to_owned(),
            i.get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("1.0")
                .to_owned(),
        ),
        // A v0.3 card: `url` with `preferredTransport` JSONRPC (the default).
        None => match card.get("url").and_then(Value::as_str) {
            Some(endpoint)
                if card
                    .get("preferredTransport")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t == "JSONRPC") =>
            {
                (endpoint.to_owned(), "0.3".to_owned())
            }
            _ => {
                return Err(PeerError::Invalid(
                    "the card offers no JSON-RPC interface".into(),
                ));
            }
        },
    };
    let endpoint = reqwest::Url::parse(url)
        .and_then(|base| base.join(&endpoint))
        .map_err(|e| PeerError::Invalid(format!("the card's endpoint is not a URL: {e}")))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(PeerError::Invalid(
            "the card's endpoint is not http or https".into(),
        ));
    }
    Ok(Card {
        card,
        name,
        endpoint: endpoint.to_string(),
        version,
    })
}

/// One message to a peer: its text, the task and context it continues, and how long
/// to wait for the answer.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub text: &'a str,
    pub task_id: Option<&'a str>,
    pub context_id: Option<&'a str>,
    pub timeout: Duration,
}

/// One blocking `SendMessage` of `outgoing`.
pub async fn send_message(
    http: &reqwest::Client,
    endpoint: &str,
    version: &str,
    token: Option<&str>,
    outgoing: Outgoing<'_>,
) -> Result<PeerReply, PeerError> {
    let Outgoing {
        text,
        task_id,
        context_id,
        timeout,
    } = outgoing;
    let v03 = version.starts_with("0.");
    let mut message = if v03 {
        json!({"kind": "message", "messageId": uuid::Uuid::now_v7().to_string(), "role": "user",
               "parts": [{"kind": "text", "text": text}]})
    } else {
        json!({"messageId": uuid::Uuid::now_v7().to_string(), "role": "ROLE_USER",
               "parts": [{"text": text}]})
    };
    if let Some(task) = task_id {
        message["taskId"] = json!(task);
    }
    if let Some(context) = context_id {
        message["contextId"] = json!(context);
    }
    let (method, configuration) = if v03 {
        ("message/send", json!({"blocking": true}))
    } else {
        ("SendMessage", json!({"returnImmediately": false}))
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": uuid::Uuid::now_v7().to_string(),
        "method": method,
        "params": {"message": message, "configuration": configuration},
    });
    let mut request = http.post(endpoint).timeout(timeout).json(&body);
    if !v03 {
        request = request.header("A2A-Version", "1.0");
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            PeerError::Timeout(timeout.as_secs())
        } else {
            unreachable(&e)
        }
    })?;
    let status = response.status().as_u16();
    if status == 401 || status == 403 {
        return Err(PeerError::Refused(status));
    }
    let text = response.text().await.map_err(|e| {
        if e.is_timeout() {
            PeerError::Timeout(timeout.as_secs())
        } else {
            unreachable(&e)
        }
    })?;
    if !(200..300).contains(&status) {
        return Err(PeerError::Http(status, clip(&text)));
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|_| PeerError::Invalid(format!("not JSON: {}", clip(&text))))?;
    if let Some(error) = answer.get("error") {
        return Err(PeerError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_owned(),
        });
    }
    let result = answer
        .get("result")
        .ok_or_else(|| PeerError::Invalid("no result and no error".into()))?;
    read_result(result)
}

/// A `SendMessage` result: `{task}` or `{message}` (v1.0), or the object itself
/// with its `kind` (v0.3).
fn read_result(result: &Value) -> Result<PeerReply, PeerError> {
    let task = result
        .get("task")
        .or_else(|| (result.get("kind").and_then(Value::as_str) == Some("task")).then_some(result));
    if let Some(task) = task {
        let status = task.get("status").cloned().unwrap_or(Value::Null);
        let state = status
            .get("state")
            .and_then(Value::as_str)
            .ok_or_else(|| PeerError::Invalid("a task without a state".into()))?;
        let state = state
            .trim_start_matches("TASK_STATE_")
            .to_ascii_lowercase()
            .replace('_', "-");
        let answer = task
            .get("artifacts")
            .and_then(Value::as_array)
            .map(|artifacts| {
                artifacts
                    .iter()
                    .map(|a| parts_text(a.get("parts")))
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let status_message = status
            .get("message")
            .map(|m| parts_text(m.get("parts")))
            .filter(|t| !t.is_empty());
        return Ok(PeerReply {
            state,
            task_id: task.get("id").and_then(Value::as_str).map(str::to_owned),
            context_id: task
                .get("contextId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            answer,
            status_message,
        });
    }
    let message = result.get("message").or_else(|| {
        (result.get("kind").and_then(Value::as_str) == Some("message")).then_some(result)
    });
    match message {
        Some(message) => Ok(PeerReply {
            state: "message".to_owned(),
            task_id: message
                .get("taskId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            context_id: message
                .get("contextId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            answer: parts_text(message.get("parts")),
            status_message: None,
        }),
        None => Err(PeerError::Invalid(
            "the result is neither a task nor a message".into(),
        )),
    }
}

/// The text of a part list (data parts as JSON).
fn parts_text(parts: Option<&Value>) -> String {
    parts
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| {
                    p.get("text")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| p.get("data").map(Value::to_string))
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn unreachable(e: &reqwest::Error) -> PeerError {
    PeerError::Unreachable(crate::channels::describe(e))
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_card_gives_its_json_rpc_endpoint_and_a_v03_card_its_url() {
        let v1 = json!({"name": "Peer", "supportedInterfaces": [
            {"url": "http://h/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
            {"url": "/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]});
        let card = read_card(v1, "http://h:9/.well-known/agent-card.json").unwrap();
        assert_eq!(
            (card.endpoint.as_str(), card.version.as_str()),
            ("http://h:9/rpc", "1.0")
        );
        let v03 = json!({"name": "Old", "url": "http://old/a2a"});
        assert_eq!(read_card(v03, "http://old/").unwrap().version, "0.3");
        assert!(read_card(json!({"name": "No"}), "http://x/").is_err());
        assert!(read_card(json!({"url": "http://x"}), "http://x/").is_err());
    }

    #[test]
    fn tasks_and_messages_read_as_replies() {
        let task = json!({"task": {"id": "t1", "contextId": "c1",
            "status": {"state": "TASK_STATE_INPUT_REQUIRED",
                       "message": {"role": "ROLE_AGENT", "parts": [{"text": "Which colour?"}]}},
            "artifacts": []}});
        let reply = read_result(&task).unwrap();
        assert!(reply.needs_input());
        assert_eq!(reply.status_message.as_deref(), Some("Which colour?"));
        assert_eq!(reply.task_id.as_deref(), Some("t1"));
        let done = json!({"kind": "task", "id": "t2", "contextId": "c",
            "status": {"state": "completed"},
            "artifacts": [{"parts": [{"kind": "text", "text": "Hello"}]}]});
        let reply = read_result(&done).unwrap();
        assert_eq!(
            (reply.state.as_str(), reply.answer.as_str()),
            ("completed", "Hello")
        );
        let message = json!({"message": {"parts": [{"text": "hi"}, {"data": {"a": 1}}]}});
        assert_eq!(read_result(&message).unwrap().answer, "hi\n{\"a\":1}");
        assert!(read_result(&json!({"other": 1})).is_err());
    }
}
