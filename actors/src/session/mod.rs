//! The session actor: one per live session key. It serializes turns of its session,
//! runs each as a task (never awaiting a model or tool in `handle`), and passivates
//! when idle; the store holds everything needed to activate it again.

mod messages;
mod state;
mod supervisor;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::sync::CancellationToken;

pub use messages::{SessionMsg, SupervisorMsg, TurnInput};
pub use state::SessionArgs;
use state::{RunningTurn, SessionState};
pub use supervisor::{SessionSupervisor, SupervisorArgs};

use crate::turn::TurnTask;

pub struct SessionActor;

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SessionArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_after(args.idle_after, || SessionMsg::IdleCheck);
        Ok(SessionState::new(args))
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Submit(input) => {
                state.received += 1;
                state.queue.push_back(input);
                start_next(&myself, state);
            }
            SessionMsg::Cancel(reply) => {
                state.received += 1;
                let mut cancelled = !state.queue.is_empty();
                state.queue.clear();
                if let Some(running) = &state.running {
                    running.cancel.cancel();
                    cancelled = true;
                }
                let _ = reply.send(cancelled);
            }
            SessionMsg::TurnFinished(outcome) => {
                let finished_current = state
                    .running
                    .as_ref()
                    .is_some_and(|r| r.run_id == outcome.summary.run_id);
                if finished_current {
                    state.running = None;
                    state.history = outcome.history;
                }
                start_next(&myself, state);
                if state.is_idle() {
                    state.idle_since = std::time::Instant::now();
                    myself.send_after(state.args.idle_after, || SessionMsg::IdleCheck);
                }
            }
            SessionMsg::IdleCheck => {
                if state.is_idle() && state.idle_since.elapsed() >= state.args.idle_after {
                    let _ = state.args.supervisor.cast(SupervisorMsg::Idle {
                        address: state.args.address.clone(),
                        actor: myself.get_id(),
                        received: state.received,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Starts the next queued turn as a task if none is running.
fn start_next(myself: &ActorRef<SessionMsg>, state: &mut SessionState) {
    if state.running.is_some() {
        return;
    }
    let Some(input) = state.queue.pop_front() else {
        return;
    };
    let cancel = CancellationToken::new();
    let (tenant, key) = state.args.address.clone();
    let task = TurnTask {
        deps: state.args.deps.clone(),
        tenant,
        key,
        run_id: input.run_id.clone(),
        input: input.input,
        origin: input.origin,
        hooks: input.hooks,
        events: input.events,
        cancel: cancel.clone(),
        shutdown: state.args.shutdown.clone(),
    };
    state.running = Some(RunningTurn {
        run_id: input.run_id,
        cancel,
    });
    // The task owns the cached history while it runs; it comes back with the outcome.
    let history = state.history.take();
    let myself = myself.clone();
    state.args.tracker.spawn(async move {
        let outcome = task.run(history).await;
        let _ = myself.cast(SessionMsg::TurnFinished(Box::new(outcome)));
    });
}
