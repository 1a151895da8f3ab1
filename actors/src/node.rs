//! The node supervisor: the root of a node's actor tree. It starts the session
//! supervisor and the tool pool, and restarts either if it fails; the handles the
//! rest of the node uses are swapped in place so callers never hold a dead actor.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::session::{SessionSupervisor, SupervisorArgs, SupervisorMsg};
use crate::tool_pool::{ToolPool, ToolPoolMsg};
use crate::turn::TurnDeps;

/// Current handles of the node's long-lived actors.
#[derive(Default)]
pub(crate) struct NodeRefs {
    sessions: RwLock<Option<ActorRef<SupervisorMsg>>>,
    tools: RwLock<Option<ActorRef<ToolPoolMsg>>>,
}

impl NodeRefs {
    pub fn sessions(&self) -> Option<ActorRef<SupervisorMsg>> {
        self.sessions.read().ok().and_then(|g| g.clone())
    }

    pub fn tools(&self) -> Option<ActorRef<ToolPoolMsg>> {
        self.tools.read().ok().and_then(|g| g.clone())
    }

    fn set_sessions(&self, actor: ActorRef<SupervisorMsg>) {
        if let Ok(mut slot) = self.sessions.write() {
            *slot = Some(actor);
        }
    }

    fn set_tools(&self, actor: ActorRef<ToolPoolMsg>) {
        if let Ok(mut slot) = self.tools.write() {
            *slot = Some(actor);
        }
    }
}

pub(crate) struct NodeSupervisor;

pub(crate) struct NodeArgs {
    pub deps: Arc<TurnDeps>,
    pub refs: Arc<NodeRefs>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub idle_after: Duration,
    pub tool_capacity: usize,
}

/// The node supervisor has no messages of its own; it only supervises.
pub(crate) enum NodeMsg {}

impl NodeSupervisor {
    async fn start_sessions(
        myself: &ActorRef<NodeMsg>,
        args: &NodeArgs,
    ) -> Result<(), ActorProcessingErr> {
        let supervisor_args = SupervisorArgs {
            deps: args.deps.clone(),
            shutdown: args.shutdown.clone(),
            tracker: args.tracker.clone(),
            idle_after: args.idle_after,
        };
        let (actor, _) =
            Actor::spawn_linked(None, SessionSupervisor, supervisor_args, myself.get_cell())
                .await?;
        args.refs.set_sessions(actor);
        Ok(())
    }

    async fn start_tools(
        myself: &ActorRef<NodeMsg>,
        args: &NodeArgs,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) =
            Actor::spawn_linked(None, ToolPool, args.tool_capacity, myself.get_cell()).await?;
        args.refs.set_tools(actor);
        Ok(())
    }
}

impl Actor for NodeSupervisor {
    type Msg = NodeMsg;
    type State = NodeArgs;
    type Arguments = NodeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: NodeArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Self::start_tools(&myself, &args).await?;
        Self::start_sessions(&myself, &args).await?;
        Ok(args)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisionEvent::ActorFailed(cell, error) = event else {
            return Ok(());
        };
        let is_current = |id| Some(id);
        if is_current(cell.get_id()) == state.refs.sessions().map(|a| a.get_id()) {
            tracing::error!(error = %error, "session supervisor failed; restarting it");
            Self::start_sessions(&myself, state).await?;
        } else if is_current(cell.get_id()) == state.refs.tools().map(|a| a.get_id()) {
            tracing::error!(error = %error, "tool pool failed; restarting it");
            Self::start_tools(&myself, state).await?;
        }
        Ok(())
    }
}
