//! `call_agent`: sends a message to one of the tenant's A2A peers and reports what it
//! answered: the answer of a completed task, a question it asks (`input-required`,
//! with the `taskId` to answer it under), or the state it stopped in. System-effect
//! tier; a call that answers a peer's question always waits for a human.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::wire::PeerError;
use super::{A2aPeers, CallError, PeersError};
use crate::domain::TenantId;
use crate::tools::{RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec};

pub const CALL_AGENT: &str = "call_agent";

/// Longest a call waits by default.
const DEFAULT_TIMEOUT_S: u64 = 120;

pub fn call_agent_spec() -> ToolSpec {
    ToolSpec {
        name: CALL_AGENT.to_owned(),
        description: "Send a message to another agent (an A2A peer registered for this \
                      workspace) and get its answer. When the peer asks a question \
                      (state input-required) answer it with another call_agent carrying \
                      the taskId and contextId it gave; a human confirms every such answer."
            .to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {
                "peer": {"type": "string", "description": "the peer's alias"},
                "message": {"type": "string", "description": "what to send"},
                "taskId": {"type": "string", "description": "the peer's task this continues (to answer its question)"},
                "contextId": {"type": "string", "description": "the peer's context this belongs to"},
                "timeoutS": {"type": "integer", "minimum": 1, "maximum": 600},
            },
            "required": ["peer", "message"],
        }),
        risk: RiskTier::SystemEffect,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CallArgs {
    pub peer: String,
    pub message: String,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub context_id: Option<String>,
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

pub(super) struct CallAgent {
    peers: Arc<A2aPeers>,
    tenant: TenantId,
}

impl A2aPeers {
    /// The `call_agent` tool for `tenant`'s turns.
    pub fn tool(self: &Arc<Self>, tenant: &TenantId) -> Arc<dyn Tool> {
        Arc::new(CallAgent {
            peers: self.clone(),
            tenant: tenant.clone(),
        })
    }

    /// Why a `call_agent` call with `args` must wait for a human whatever the policy
    /// says: it answers a question a peer asked.
    pub fn answering(&self, tenant: &TenantId, args: &serde_json::Value) -> Option<String> {
        let task = args.get("taskId").and_then(|t| t.as_str())?;
        let peer = args
            .get("peer")
            .and_then(|p| p.as_str())
            .unwrap_or("the peer");
        let answer = args.get("message").and_then(|m| m.as_str()).unwrap_or("");
        Some(match self.open_question(tenant, task) {
            Some(open) => format!(
                "{} asked \"{}\"; the agent answers \"{answer}\": a human confirms (or edits) \
                 what is sent back",
                open.alias, open.question
            ),
            None => format!(
                "the agent answers {peer}'s task {task} with \"{answer}\": a human confirms \
                 (or edits) what is sent to another agent"
            ),
        })
    }
}

#[async_trait]
impl Tool for CallAgent {
    fn spec(&self) -> ToolSpec {
        call_agent_spec()
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: CallArgs = crate::tools::parse_args(args)?;
        let timeout =
            Duration::from_secs(args.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S).clamp(1, 600));
        let call = self.peers.call(
            &self.tenant,
            &args.peer,
            &ctx.secrets,
            super::Outgoing {
                text: &args.message,
                task_id: args.task_id.as_deref(),
                context_id: args.context_id.as_deref(),
                timeout,
            },
        );
        let reply = tokio::select! {
            reply = call => reply,
            () = ctx.cancel.cancelled() => {
                return Err(ToolError::new(ToolErrorKind::Cancelled, "the call was cancelled"));
            }
        };
        match reply {
            Ok(reply) => {
                let mut out = serde_json::to_value(&reply).unwrap_or_default();
                out["peer"] = json!(args.peer);
                match reply.state.as_str() {
                    "input-required" => {
                        out["next"] = json!(
                            "the peer asks statusMessage; answer with call_agent and this \
                             taskId and contextId (ask a human with ask_text_input when you \
                             do not know the answer)"
                        );
                    }
                    "failed" | "rejected" | "canceled" => {
                        let why = reply.status_message.clone().unwrap_or_default();
                        return Err(ToolError::new(
                            ToolErrorKind::Failed,
                            format!(
                                "the peer {} ended the task {}: {why}",
                                args.peer, reply.state
                            ),
                        ));
                    }
                    _ => {}
                }
                Ok(ToolOutput::text(ctx.secrets.redact(&out.to_string())))
            }
            Err(e) => Err(refusal(&args.peer, e, &self.peers, &self.tenant).await),
        }
    }
}

async fn refusal(peer: &str, e: CallError, peers: &A2aPeers, tenant: &TenantId) -> ToolError {
    match e {
        CallError::Peer(PeersError::NotFound(_)) => {
            let known: Vec<String> = peers
                .list(tenant)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.alias)
                .collect();
            ToolError::new(
                ToolErrorKind::NotFound,
                format!("there is no peer named {peer:?}"),
            )
            .with_hint(if known.is_empty() {
                "no peers are registered (an operator adds them at /api/v1/a2a/peers)".to_owned()
            } else {
                format!("peers: {}", known.join(", "))
            })
        }
        CallError::Peer(other) => ToolError::new(ToolErrorKind::Failed, other.to_string()),
        CallError::Token(why) => ToolError::new(ToolErrorKind::Denied, why),
        CallError::Wire(wire) => {
            let kind = match &wire {
                PeerError::Timeout(_) => ToolErrorKind::Timeout,
                PeerError::Unreachable(_) => ToolErrorKind::Unavailable,
                PeerError::Refused(_) => ToolErrorKind::Denied,
                PeerError::Http(..) | PeerError::Rpc { .. } | PeerError::Invalid(_) => {
                    ToolErrorKind::Failed
                }
            };
            ToolError::new(kind, format!("{peer}: {wire}"))
        }
    }
}
