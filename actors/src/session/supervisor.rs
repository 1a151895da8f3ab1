//! The session supervisor: routes messages to session actors by address, activates
//! them on demand, passivates idle ones without losing a message, and forgets actors
//! that stop or fail (their state is in the store; the next message rebuilds them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::messages::{SessionAddress, SessionMsg, SupervisorMsg};
use super::{SessionActor, SessionArgs};
use crate::context::NodeContext;

pub struct SessionSupervisor;

pub struct SupervisorArgs {
    pub deps: Arc<NodeContext>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub idle_after: Duration,
}

struct Live {
    actor: ActorRef<SessionMsg>,
    /// Messages routed to this actor, compared with what it reports having received.
    routed: u64,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    sessions: HashMap<SessionAddress, Live>,
    /// Sessions passivated since memory was last given back.
    passivated: usize,
}

/// After this many passivations the node gives freed memory back to the system.
const GIVE_BACK_EVERY: usize = 256;

impl Actor for SessionSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            args,
            sessions: HashMap::new(),
            passivated: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Route(address, msg) => {
                if !state.sessions.contains_key(&address) {
                    let args = SessionArgs {
                        address: address.clone(),
                        deps: state.args.deps.clone(),
                        supervisor: myself.clone(),
                        shutdown: state.args.shutdown.clone(),
                        tracker: state.args.tracker.clone(),
                        idle_after: state.args.idle_after,
                    };
                    // Outside the sender's span: the actor outlives the request that
                    // woke it, and a span it ran under would stay open (unexported)
                    // for as long as the session is alive.
                    let (actor, _) =
                        Actor::spawn_linked(None, SessionActor, args, myself.get_cell())
                            .instrument(tracing::Span::none())
                            .await?;
                    state
                        .sessions
                        .insert(address.clone(), Live { actor, routed: 0 });
                }
                if let Some(live) = state.sessions.get_mut(&address) {
                    live.routed += 1;
                    if let Err(e) = live.actor.send_message(msg) {
                        tracing::error!(session = %address.1, error = %e, "session actor is gone; message dropped");
                    }
                }
            }
            SupervisorMsg::Idle {
                address,
                actor,
                received,
            } => {
                let quiet = state
                    .sessions
                    .get(&address)
                    .is_some_and(|live| live.actor.get_id() == actor && live.routed == received);
                if quiet && let Some(live) = state.sessions.remove(&address) {
                    tracing::debug!(session = %address.1, "passivating idle session");
                    live.actor.stop(Some("passivated".to_owned()));
                    facio_services::telemetry::metrics()
                        .passivations
                        .add(1, &[facio_services::telemetry::metrics::tenant(&address.0)]);
                    state.passivated += 1;
                    if state.passivated >= GIVE_BACK_EVERY {
                        state.passivated = 0;
                        // What the passivated sessions held goes back to the system,
                        // not only to the allocator (RSS follows the sessions alive).
                        let keep = state.sessions.len().max(64) * 2;
                        if state.sessions.capacity() > keep {
                            state.sessions.shrink_to(keep);
                        }
                        state.args.tracker.spawn(async {
                            let _ = tokio::task::spawn_blocking(facio_services::memory::give_back)
                                .await;
                        });
                    }
                }
            }
            SupervisorMsg::ActiveCount(reply) => {
                let _ = reply.send(state.sessions.len());
            }
            SupervisorMsg::Drain => {
                for live in state.sessions.values() {
                    let _ = live.actor.send_message(SessionMsg::Drain);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A child's end never stops the supervisor: forget it; the store rebuilds it.
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => forget(state, &cell),
            SupervisionEvent::ActorFailed(cell, error) => {
                tracing::error!(error = %error, "session actor failed; it will be rebuilt from the store");
                forget(state, &cell);
            }
            _ => {}
        }
        Ok(())
    }
}

fn forget(state: &mut SupervisorState, cell: &ActorCell) {
    state
        .sessions
        .retain(|_, live| live.actor.get_id() != cell.get_id());
}
