//! `message`: the agent sends a message out through one of its tenant's webhook
//! channels (system-effect tier: it waits for a human unless a rule allows it). The
//! message is signed like the channel's answers and retried the same way; one that
//! cannot be delivered is a dead letter and an error for the model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{Delivery, deliver, delivery_event};
use crate::config::WebhookChannel;
use crate::domain::TenantId;
use crate::store::{Change, Store};
use crate::tools::{RiskTier, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput, ToolSpec};

pub const MESSAGE: &str = "message";

pub fn message_spec() -> ToolSpec {
    ToolSpec {
        name: MESSAGE.to_owned(),
        description: "Send a message through one of this workspace's channels (a webhook \
                      channel with an outbound URL) to a recipient there."
            .to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {
                "channel": {"type": "string", "description": "the channel's name"},
                "to": {"type": "string", "description": "the recipient, as the channel names them"},
                "text": {"type": "string"},
            },
            "required": ["channel", "to", "text"],
        }),
        risk: RiskTier::SystemEffect,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    channel: String,
    to: String,
    text: String,
}

struct MessageTool {
    channels: BTreeMap<String, WebhookChannel>,
    tenant: TenantId,
    store: Arc<dyn Store>,
    http: reqwest::Client,
}

/// The `message` tool for `tenant`'s turns, over its `channels` (see
/// [`super::tenant_channels`]).
pub fn message_tool(
    channels: Vec<(String, WebhookChannel)>,
    tenant: &TenantId,
    store: Arc<dyn Store>,
    http: reqwest::Client,
) -> Arc<dyn Tool> {
    let channels: BTreeMap<String, WebhookChannel> = channels.into_iter().collect();
    Arc::new(MessageTool {
        channels,
        tenant: tenant.clone(),
        store,
        http,
    })
}

#[async_trait]
impl Tool for MessageTool {
    fn spec(&self) -> ToolSpec {
        message_spec()
    }

    async fn execute(
        &self,
        ctx: &ToolContext,
        args: serde_json::Value,
    ) -> Result<ToolOutput, ToolError> {
        let args: Args = crate::tools::parse_args(args)?;
        let known = || self.channels.keys().cloned().collect::<Vec<_>>().join(", ");
        let Some(channel) = self.channels.get(&args.channel) else {
            return Err(ToolError::new(
                ToolErrorKind::NotFound,
                format!("there is no channel named {:?}", args.channel),
            )
            .with_hint(format!("channels: {}", known())));
        };
        let Some(url) = &channel.outbound_url else {
            return Err(ToolError::new(
                ToolErrorKind::Failed,
                format!(
                    "the channel {} has no outboundUrl: it only receives",
                    args.channel
                ),
            ));
        };
        let channel = super::resolved(channel, &ctx.secrets)
            .map_err(|e| ToolError::new(ToolErrorKind::Failed, e))?;
        let payload = json!({"channel": args.channel, "to": args.to, "inReplyTo": null,
                             "runId": null, "text": args.text});
        let backoff = Duration::from_millis(channel.retry_backoff_ms);
        let delivery = tokio::select! {
            d = deliver(&self.http, url, &channel.secret, &payload, channel.max_attempts, backoff) => d,
            () = ctx.cancel.cancelled() => {
                return Err(ToolError::new(ToolErrorKind::Cancelled, "the message was not sent"));
            }
        };
        let event = delivery_event(&args.channel, &payload, &delivery);
        if let Err(e) = self
            .store
            .apply_change(
                &self.tenant,
                Change::Record,
                vec![(self.tenant.clone(), event)],
            )
            .await
        {
            tracing::error!(error = %e, "could not record a channel delivery");
        }
        match delivery {
            Delivery::Delivered { attempts } => Ok(ToolOutput::text(
                json!({"delivered": true, "channel": args.channel, "to": args.to, "attempts": attempts})
                    .to_string(),
            )),
            Delivery::DeadLetter { attempts, error } => Err(ToolError::new(
                ToolErrorKind::Unavailable,
                format!(
                    "the channel {} could not deliver the message after {attempts} attempts \
                     ({error}); it is kept as a dead letter",
                    args.channel
                ),
            )),
        }
    }
}
