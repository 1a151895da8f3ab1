//! The tool pool: runs tool calls as isolated tasks with a timeout each, and bounds
//! how many run at once so a burst of calls gets a clear `busy` error instead of
//! exhausting the node.

mod messages;

use std::time::Duration;

use facio_services::tools::{ToolError, ToolErrorKind, ToolOutput};
use ractor::{Actor, ActorProcessingErr, ActorRef};

pub use messages::ToolPoolMsg;

/// Runs tool calls; a panicking or hanging tool cannot take the pool or the turn down.
pub struct ToolPool;

pub struct ToolPoolState {
    capacity: usize,
    in_flight: usize,
}

impl Actor for ToolPool {
    type Msg = ToolPoolMsg;
    type State = ToolPoolState;
    /// Most calls in flight at once.
    type Arguments = usize;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        capacity: usize,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ToolPoolState {
            capacity: capacity.max(1),
            in_flight: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ToolPoolMsg::Execute {
                tool,
                ctx,
                args,
                timeout,
                reply,
            } => {
                if state.in_flight >= state.capacity {
                    let busy = ToolError::new(
                        ToolErrorKind::Busy,
                        format!(
                            "{} tool calls are already running on this node",
                            state.in_flight
                        ),
                    )
                    .with_hint("try the call again shortly");
                    let _ = reply.send(Err(busy));
                    return Ok(());
                }
                state.in_flight += 1;
                tokio::spawn(async move {
                    let result = run_isolated(tool, ctx, args, timeout).await;
                    let _ = reply.send(result);
                    let _ = myself.cast(ToolPoolMsg::Done);
                });
            }
            ToolPoolMsg::Done => state.in_flight = state.in_flight.saturating_sub(1),
        }
        Ok(())
    }
}

/// Runs one call in its own task so a panic is contained, bounded by `timeout`.
async fn run_isolated(
    tool: std::sync::Arc<dyn facio_services::tools::Tool>,
    ctx: facio_services::tools::ToolContext,
    args: serde_json::Value,
    timeout: Duration,
) -> Result<ToolOutput, ToolError> {
    let cancel = ctx.cancel.clone();
    let running = tool.clone();
    let mut handle = tokio::spawn(async move { running.execute(&ctx, args).await });
    tokio::select! {
        joined = &mut handle => match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let name = tool.spec().name;
                tracing::error!(tool = %name, "tool panicked");
                Err(ToolError::new(ToolErrorKind::Failed, format!("the tool {name} crashed while running"))
                    .with_hint("this is a fault in the tool, not in your arguments; try another approach"))
            }
            Err(_) => Err(ToolError::new(ToolErrorKind::Cancelled, "the tool call was cancelled")),
        },
        () = tokio::time::sleep(timeout) => {
            cancel.cancel();
            handle.abort();
            let name = tool.spec().name;
            Err(ToolError::new(ToolErrorKind::Timeout, format!("the tool {name} did not finish within {}s", timeout.as_secs()))
                .with_hint("narrow the request or split the work into smaller steps"))
        }
    }
}
