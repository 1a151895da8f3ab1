//! A session actor's state: at most one running turn, a queue behind it, and a cached
//! copy of the history that always matches the store (or is absent).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use facio_services::domain::{ChatMessage, RunId};
use ractor::ActorRef;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::messages::{SessionAddress, SupervisorMsg, TurnInput};
use crate::context::NodeContext;

/// What a session actor is started with.
pub struct SessionArgs {
    pub address: SessionAddress,
    pub deps: Arc<NodeContext>,
    pub supervisor: ActorRef<SupervisorMsg>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub idle_after: Duration,
}

/// The turn in progress.
pub struct RunningTurn {
    pub run_id: RunId,
    pub cancel: CancellationToken,
}

pub struct SessionState {
    pub args: SessionArgs,
    /// `None` until loaded by a turn, and again whenever it may differ from the store.
    pub history: Option<Vec<ChatMessage>>,
    pub running: Option<RunningTurn>,
    pub queue: VecDeque<TurnInput>,
    /// A run of this session waiting for a human review. New input waits behind it,
    /// so the run's tool results land right after its tool calls.
    pub waiting: Option<RunId>,
    /// Messages received from the supervisor, for the passivation handshake.
    pub received: u64,
    /// The session's lease, once taken: no turn starts without it.
    pub lease: Option<facio_services::store::Lease>,
    pub idle_since: Instant,
}

impl SessionState {
    pub fn new(args: SessionArgs) -> Self {
        Self {
            args,
            history: None,
            running: None,
            queue: VecDeque::new(),
            waiting: None,
            received: 0,
            lease: None,
            idle_since: Instant::now(),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_none() && self.queue.is_empty()
    }
}
