//! The A2A client: a tenant's peer agents (`/api/v1/a2a/peers`: an alias, the card it
//! was registered with, a `${credentials.KEY}` token reference) and the `call_agent`
//! tool that sends one of them a message and reports its answer or its task's state.
//! A peer that asks a question (`TASK_STATE_INPUT_REQUIRED`) is answered only with a
//! human's consent: the call that answers it always waits for the tenant's reviewers.

mod tool;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::TenantId;
use crate::store::{
    Applied, AuditEventKind, Change, IntegrationKind, NewAuditEvent, Store, StoreError,
};
use crate::vault::Secrets;

pub use tool::{CALL_AGENT, call_agent_spec};
pub use wire::{Outgoing, PeerError, PeerReply};

/// Longest a card fetch may take.
const CARD_TIMEOUT: Duration = Duration::from_secs(15);
/// Most peers' open questions remembered per node.
const QUESTIONS_MAX: usize = 10_000;

/// A peer as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    pub alias: String,
    /// Where its card was read.
    pub card_url: String,
    /// `${credentials.KEY}`: the bearer token sent to the peer, from the tenant's
    /// credentials (the value is never stored here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The card's name.
    pub name: String,
    /// The JSON-RPC endpoint calls go to.
    pub endpoint: String,
    /// The protocol version it speaks (`1.0`, or `0.3`).
    pub protocol_version: String,
    /// The card as read.
    #[schema(value_type = Object)]
    pub card: serde_json::Value,
    pub fetched_at: DateTime<Utc>,
}

/// What a change to a tenant's peers failed on.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no peer named {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The card could not be read: nothing was stored.
    #[error("the card at {url} could not be read: {error}")]
    Card { url: String, error: PeerError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who changes a tenant's peers, as the audit log records it.
#[derive(Debug, Clone)]
pub struct PeerActor {
    pub name: String,
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// An open question a peer asked a tenant's agent: who asked what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenQuestion {
    pub alias: String,
    pub question: String,
}

/// Every tenant's peers, as this node calls them.
pub struct A2aPeers {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    /// Tasks of peers waiting for an answer, by tenant and task id (this node's
    /// calls; another node's are asked for in the generic words).
    questions: Mutex<HashMap<(TenantId, String), OpenQuestion>>,
}

impl A2aPeers {
    pub fn new(store: Arc<dyn Store>) -> Arc<A2aPeers> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("facio/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Arc::new(A2aPeers {
            store,
            http,
            questions: Mutex::default(),
        })
    }

    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<PeerView>, StoreError> {
        let rows = self
            .store
            .integrations(tenant, IntegrationKind::A2aPeer)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(alias, definition)| {
                serde_json::from_value::<PeerView>(definition)
                    .map_err(|e| tracing::warn!(peer = %alias, error = %e, "a stored peer does not parse"))
                    .ok()
            })
            .collect())
    }

    pub async fn get(&self, tenant: &TenantId, alias: &str) -> Result<PeerView, PeersError> {
        self.list(tenant)
            .await?
            .into_iter()
            .find(|p| p.alias == alias)
            .ok_or_else(|| PeersError::NotFound(alias.to_owned()))
    }

    /// Registers `alias` (or with `replace`, registers it again) after reading its
    /// card; nothing is stored when the card cannot be read.
    pub async fn register(
        &self,
        tenant: &TenantId,
        alias: &str,
        card_url: &str,
        token: Option<String>,
        replace: bool,
        actor: &PeerActor,
    ) -> Result<PeerView, PeersError> {
        check_alias(alias)?;
        check_token(token.as_deref())?;
        match reqwest::Url::parse(card_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
            _ => {
                return Err(PeersError::Invalid(
                    "cardUrl must be an http or https URL".to_owned(),
                ));
            }
        }
        let card = tokio::time::timeout(CARD_TIMEOUT, wire::fetch_card(&self.http, card_url))
            .await
            .unwrap_or(Err(PeerError::Timeout(CARD_TIMEOUT.as_secs())))
            .map_err(|error| PeersError::Card {
                url: card_url.to_owned(),
                error,
            })?;
        let view = PeerView {
            alias: alias.to_owned(),
            card_url: card_url.to_owned(),
            token,
            name: card.name,
            endpoint: card.endpoint,
            protocol_version: card.version,
            card: card.card,
            fetched_at: Utc::now(),
        };
        let definition =
            serde_json::to_value(&view).map_err(|e| PeersError::Invalid(e.to_string()))?;
        let action = if replace { "refreshed" } else { "added" };
        let change = Change::PutIntegration {
            kind: IntegrationKind::A2aPeer,
            name: alias.to_owned(),
            definition,
            replace,
        };
        let event = event(tenant, &view, action, actor);
        match self.store.apply_change(tenant, change, vec![event]).await {
            Ok(_) => Ok(view),
            Err(StoreError::Conflict(m)) => Err(PeersError::Conflict(m)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn remove(
        &self,
        tenant: &TenantId,
        alias: &str,
        actor: &PeerActor,
    ) -> Result<(), PeersError> {
        let view = self.get(tenant, alias).await?;
        let change = Change::DeleteIntegration {
            kind: IntegrationKind::A2aPeer,
            name: alias.to_owned(),
        };
        let event = event(tenant, &view, "removed", actor);
        if self.store.apply_change(tenant, change, vec![event]).await? == Applied::Missing {
            return Err(PeersError::NotFound(alias.to_owned()));
        }
        Ok(())
    }

    /// Sends `text` to the peer `alias` and waits for its answer (at most `timeout`).
    pub async fn call(
        &self,
        tenant: &TenantId,
        alias: &str,
        secrets: &Secrets,
        outgoing: Outgoing<'_>,
    ) -> Result<PeerReply, CallError> {
        let peer = self.get(tenant, alias).await.map_err(CallError::Peer)?;
        let token = match &peer.token {
            Some(reference) => Some(
                secrets
                    .resolve_for(CALL_AGENT, reference)
                    .map(|(value, _)| value)
                    .map_err(|e| CallError::Token(e.to_string()))?,
            ),
            None => None,
        };
        let reply = wire::send_message(
            &self.http,
            &peer.endpoint,
            &peer.protocol_version,
            token.as_deref(),
            outgoing,
        )
        .await
        .map_err(CallError::Wire)?;
        if let Ok(mut questions) = self.questions.lock() {
            if let Some(task) = outgoing.task_id {
                questions.remove(&(tenant.clone(), task.to_owned()));
            }
            if reply.needs_input()
                && let Some(task) = &reply.task_id
            {
                if questions.len() >= QUESTIONS_MAX {
                    questions.clear();
                }
                questions.insert(
                    (tenant.clone(), task.clone()),
                    OpenQuestion {
                        alias: alias.to_owned(),
                        question: reply.status_message.clone().unwrap_or_default(),
                    },
                );
            }
        }
        Ok(reply)
    }

    /// The question a peer's task `task_id` waits on, when this node made the call
    /// that got it.
    pub fn open_question(&self, tenant: &TenantId, task_id: &str) -> Option<OpenQuestion> {
        self.questions
            .lock()
            .ok()?
            .get(&(tenant.clone(), task_id.to_owned()))
            .cloned()
    }
}

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Peer(PeersError),
    #[error("the peer's token: {0}")]
    Token(String),
    #[error(transparent)]
    Wire(PeerError),
}

fn check_alias(alias: &str) -> Result<(), PeersError> {
    let fine = !alias.is_empty()
        && alias.len() <= 64
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if fine {
        Ok(())
    } else {
        Err(PeersError::Invalid(format!(
            "alias {alias:?} must be 1-64 letters, digits, '-' or '_'"
        )))
    }
}

/// A token is a reference to a credential, never a value.
fn check_token(token: Option<&str>) -> Result<(), PeersError> {
    let Some(token) = token else {
        return Ok(());
    };
    let keys = crate::vault::placeholder_keys(token);
    let exact = keys.len() == 1 && token == format!("${{credentials.{}}}", keys[0]);
    if exact {
        Ok(())
    } else {
        Err(PeersError::Invalid(
            "token must be a credential reference, ${credentials.KEY} (store the value with \
             /api/v1/credentials)"
                .to_owned(),
        ))
    }
}

fn event(
    tenant: &TenantId,
    peer: &PeerView,
    action: &str,
    actor: &PeerActor,
) -> (TenantId, NewAuditEvent) {
    let mut data = serde_json::json!({
        "peer": peer.alias,
        "action": action,
        "cardUrl": peer.card_url,
        "name": peer.name,
        "endpoint": peer.endpoint,
        "token": peer.token,
    });
    for (key, value) in &actor.context {
        data[key.as_str()] = value.clone();
    }
    (
        tenant.clone(),
        NewAuditEvent {
            kind: AuditEventKind::A2aPeerChanged,
            session_key: None,
            run_id: None,
            actor: actor.name.clone(),
            data,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_references_and_aliases_are_plain() {
        assert!(check_token(Some("${credentials.PEER_TOKEN}")).is_ok());
        assert!(check_token(None).is_ok());
        assert!(check_token(Some("sk-live-123")).is_err());
        assert!(check_token(Some("Bearer ${credentials.PEER_TOKEN}")).is_err());
        assert!(check_alias("research-bot_2").is_ok());
        assert!(check_alias("").is_err());
        assert!(check_alias("a b").is_err());
    }
}
