//! The tool pool's mailbox.

use std::sync::Arc;
use std::time::Duration;

use facio_services::tools::{Tool, ToolContext, ToolError, ToolOutput};
use ractor::RpcReplyPort;

/// Messages to the [`super::ToolPool`].
pub enum ToolPoolMsg {
    /// From a turn task: run one tool call and reply with its result. Replies at once
    /// with a `busy` error when the pool is at capacity.
    Execute {
        tool: Arc<dyn Tool>,
        ctx: ToolContext,
        args: serde_json::Value,
        timeout: Duration,
        reply: RpcReplyPort<Result<ToolOutput, ToolError>>,
    },
    /// From the pool's own worker task: one call finished, a slot is free.
    Done,
}
