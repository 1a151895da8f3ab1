//! The node supervisor: the root of a node's actor tree. It starts the session
//! supervisor and the tool pool, and restarts either if it fails; the handles the
//! rest of the node uses are swapped in place so callers never hold a dead actor.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::NodeContext;
use crate::session::{SessionMsg, SessionSupervisor, SupervisorArgs, SupervisorMsg};
use crate::tool_pool::{ToolPool, ToolPoolMsg};

/// Current handles of the node's long-lived actors.
#[derive(Default)]
pub(crate) struct NodeRefs {
    /// The node supervisor, which other supervised actors (approval gates) link to.
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

    fn set_sessions(&self, actor: Option<ActorRef<SupervisorMsg>>) {
        if let Ok(mut slot) = self.sessions.write() {
            *slot = actor;
        }
    }

    fn set_tools(&self, actor: Option<ActorRef<ToolPoolMsg>>) {
        if let Ok(mut slot) = self.tools.write() {
            *slot = actor;
        }
    }
}

impl crate::context::NodeHandles for NodeRefs {
    fn tools(&self) -> Option<ActorRef<ToolPoolMsg>> {
        NodeRefs::tools(self)
    }

    fn resume(
        &self,
        tenant: facio_services::domain::TenantId,
        key: facio_services::domain::SessionKey,
        run: facio_services::domain::RunId,
        origin: crate::origin::Origin,
    ) -> Result<(), String> {
        let sessions = self
            .sessions()
            .ok_or_else(|| "the session supervisor is not running".to_owned())?;
        sessions
            .cast(SupervisorMsg::Route(
                (tenant, key),
                SessionMsg::Resume {
                    run_id: run,
                    origin,
                },
            ))
            .map_err(|e| e.to_string())
    }
}

pub(crate) struct NodeSupervisor;

pub(crate) struct NodeArgs {
    pub deps: Arc<NodeContext>,
    pub refs: Arc<NodeRefs>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub idle_after: Duration,
    pub tool_capacity: usize,
}

/// Restarts within [`RESTART_WINDOW`] after which a failing child is given up on:
/// the node then reports itself unhealthy (`/healthz` 503) to be replaced.
const RESTART_LIMIT: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// The first restart's delay; each further one within the window doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The node supervisor's children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Child {
    Sessions,
    Tools,
}

/// The node supervisor's own messages: restarting a failed child after its backoff.
pub(crate) enum NodeMsg {
    Restart(Child),
}

/// What the node supervisor keeps: its arguments and each child's recent restarts.
pub(crate) struct NodeState {
    args: NodeArgs,
    restarts: Vec<(Child, std::time::Instant)>,
}

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
        args.refs.set_sessions(Some(actor));
        Ok(())
    }

    async fn start_tools(
        myself: &ActorRef<NodeMsg>,
        args: &NodeArgs,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) =
            Actor::spawn_linked(None, ToolPool, args.tool_capacity, myself.get_cell()).await?;
        args.refs.set_tools(Some(actor));
        Ok(())
    }
}

impl Actor for NodeSupervisor {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: NodeArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Self::start_tools(&myself, &args).await?;
        Self::start_sessions(&myself, &args).await?;
        Ok(NodeState {
            args,
            restarts: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let NodeMsg::Restart(child) = message;
        let started = match child {
            Child::Sessions => Self::start_sessions(&myself, &state.args).await,
            Child::Tools => Self::start_tools(&myself, &state.args).await,
        };
        if let Err(e) = started {
            tracing::error!(child = ?child, error = %e, "cannot restart; trying again");
            Self::schedule(&myself, state, child);
        }
        Ok(())
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
        let id = Some(cell.get_id());
        let refs = &state.args.refs;
        let child = if id == refs.sessions().map(|a| a.get_id()) {
            refs.set_sessions(None);
            Child::Sessions
        } else if id == refs.tools().map(|a| a.get_id()) {
            refs.set_tools(None);
            Child::Tools
        } else {
            // An approval gate: its review stays pending in the store, and is watched
            // again when the nodes next change or the node restarts.
            tracing::error!(error = %error, "an approval gate failed");
            return Ok(());
        };
        tracing::error!(child = ?child, error = %error, "a node actor failed; restarting it");
        Self::schedule(&myself, state, child);
        Ok(())
    }
}

impl NodeSupervisor {
    /// Restarts `child` after a backoff that doubles with each recent restart, or
    /// gives up on it after [`RESTART_LIMIT`] within [`RESTART_WINDOW`].
    fn schedule(myself: &ActorRef<NodeMsg>, state: &mut NodeState, child: Child) {
        let now = std::time::Instant::now();
        state
            .restarts
            .retain(|(_, at)| now.duration_since(*at) < RESTART_WINDOW);
        let recent = state.restarts.iter().filter(|(c, _)| *c == child).count();
        if recent >= RESTART_LIMIT {
            tracing::error!(child = ?child, restarts = recent,
                "a node actor keeps failing; giving up on it (this node reports itself unhealthy)");
            return;
        }
        state.restarts.push((child, now));
        let backoff = FIRST_BACKOFF * 2u32.pow(u32::try_from(recent).unwrap_or(0));
        myself.send_after(backoff, move || NodeMsg::Restart(child));
    }
}

/// Tells the session's holder to look at its stored work: here, or on to the live
/// node holding it; a session nobody holds is taken here. `false` while the session
/// is still held by a node that is gone: ask again later (a sweep will).
pub(crate) async fn pass_notice(
    deps: &crate::context::NodeContext,
    refs: &NodeRefs,
    tenant: &facio_services::domain::TenantId,
    key: &facio_services::domain::SessionKey,
) -> bool {
    let lease = match deps.store.get_lease(tenant, key).await {
        Ok(lease) => lease.filter(|l| l.expires_at > chrono::Utc::now()),
        Err(e) => {
            tracing::warn!(session = %key, error = %e, "cannot read the session's lease; the notice waits");
            return false;
        }
    };
    if let Some(lease) = lease
        && lease.owner != deps.node
    {
        let Some(peers) = deps.peers.get() else {
            return false;
        };
        if !peers.is_live(&lease.owner) {
            return false;
        }
        return match peers.notify(&lease.owner, tenant, key).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(session = %key, owner = %lease.owner, error = %e, "cannot pass a notice on");
                false
            }
        };
    }
    match refs.sessions() {
        Some(sessions) => sessions
            .cast(SupervisorMsg::Route(
                (tenant.clone(), key.clone()),
                SessionMsg::Poke,
            ))
            .is_ok(),
        None => false,
    }
}
