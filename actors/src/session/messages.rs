//! Mailboxes of the session actor and its supervisor.

use std::sync::Arc;

use facio_services::domain::{RunId, SessionKey, TenantId};
use ractor::{ActorId, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};

use crate::turn::{Origin, TurnEvent, TurnHooks, TurnOutcome};

/// A session is identified by its tenant and key.
pub type SessionAddress = (TenantId, SessionKey);

/// A place in the node's bounded intake of new turns: taken before a turn is sent
/// towards its session actor, given back when the actor takes the message, or when
/// the message is dropped unread with a stopped actor's mailbox. Ractor's mailboxes
/// are unbounded; this bounds what waits in them.
pub struct Admission(Arc<std::sync::atomic::AtomicUsize>);

impl Admission {
    /// A place, if fewer than `capacity` are taken.
    pub fn take(taken: &Arc<std::sync::atomic::AtomicUsize>, capacity: usize) -> Option<Admission> {
        use std::sync::atomic::Ordering;
        taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now < capacity).then_some(now + 1)
            })
            .ok()
            .map(|_| Admission(taken.clone()))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Input for a new turn.
pub struct TurnInput {
    pub run_id: RunId,
    pub input: String,
    pub origin: Origin,
    pub hooks: Option<Arc<dyn TurnHooks>>,
    pub events: Option<mpsc::Sender<TurnEvent>>,
    /// The model the turn calls; `None`: the configured default.
    pub model: Option<String>,
    /// Continue a run that waited for a human review instead of starting one.
    pub resume: bool,
    /// With `resume`: go on with a run a gone owner left `running`.
    pub continues: bool,
    /// Told once the turn's accept step has committed (or why it could not be); the
    /// caller is acknowledged only then. A turn that has to wait behind another is
    /// recorded as queued first, and its caller is told once that has committed.
    pub accepted: Option<oneshot::Sender<Result<(), crate::turn::NotAccepted>>>,
    /// Its queued record is being written: it does not start before that ends.
    pub recording: bool,
    /// Its run is stored as queued (so a stop must close it).
    pub stored: bool,
}

impl TurnInput {
    /// A stored run going on: after its review closed, or (`continues`) where a gone
    /// owner left it running. Its input and history are in the store; nobody waits on
    /// it but through the store.
    pub fn resumed(run_id: RunId, origin: Origin, continues: bool) -> TurnInput {
        TurnInput {
            run_id,
            input: String::new(),
            origin,
            hooks: None,
            events: None,
            model: None,
            resume: true,
            continues,
            accepted: None,
            recording: false,
            stored: false,
        }
    }
}

/// Messages to a [`super::SessionActor`].
pub enum SessionMsg {
    /// From the supervisor (routing a caller's input): start a turn now, or after the
    /// turns already queued. No reply: progress goes to `TurnInput::events`.
    /// A new turn, with its place in the node's bounded intake (given back as the
    /// actor takes the message, or drops it unread).
    Submit(Box<TurnInput>, Admission),
    /// From the supervisor: cancel the running turn and drop queued ones. Replies
    /// whether anything was cancelled.
    Cancel(RpcReplyPort<bool>),
    /// From the supervisor: delete the session's history, runs and reviews, unless a
    /// turn is running, queued or waiting for a review. Replies whether it existed.
    Reset(
        Option<Box<facio_services::store::NewAuditEvent>>,
        RpcReplyPort<Result<bool, ResetError>>,
    ),
    /// From the session's own turn task: the turn ended.
    TurnFinished(Box<TurnOutcome>),
    /// From a closed review: continue the run that waited for it.
    Resume { run_id: RunId, origin: Origin },
    /// From the session itself, first of all: take the session's lease and load what
    /// is waiting (off the supervisor, which only spawns).
    Activate,
    /// From the session's own task: a waiting turn's queued record committed (or not).
    Queued { run_id: RunId, stored: bool },
    /// From the runtime after a restart: activate, which takes the session's queued
    /// turns from the store; nothing else.
    Wake,
    /// From the runtime (a review decided on another node, a node's sweep): resume
    /// every run of the session whose reviews are all closed, unless it already is.
    Poke,
    /// From the session's own timer: passivate if still idle.
    IdleCheck,
    /// From the supervisor, as the node drains: give the session up once idle.
    Drain,
}

/// Why a session could not be reset.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResetError {
    #[error("the session has a turn running, queued or waiting for a review; stop it first")]
    Busy,
    #[error("the store failed: {0}")]
    Store(String),
}

/// Messages to the [`super::SessionSupervisor`].
pub enum SupervisorMsg {
    /// From the runtime: deliver `msg` to the session, activating it if needed.
    Route(SessionAddress, SessionMsg),
    /// From a session actor: it has been idle and has handled `received` routed
    /// messages. The supervisor stops it only if nothing was routed since.
    Idle {
        address: SessionAddress,
        actor: ActorId,
        received: u64,
    },
    /// From the runtime: how many sessions are active.
    ActiveCount(RpcReplyPort<usize>),
    /// From the runtime: the node drains; every session gives itself up once idle.
    Drain,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::Admission;

    #[test]
    fn the_intake_admits_up_to_its_capacity_and_a_dropped_message_gives_its_place_back() {
        let taken = Arc::new(AtomicUsize::new(0));
        let first = Admission::take(&taken, 2).expect("room");
        let second = Admission::take(&taken, 2).expect("room");
        assert!(Admission::take(&taken, 2).is_none(), "full");
        // A message dropped unread (its actor stopped) frees its place like one taken.
        let unread = vec![first];
        drop(unread);
        let third = Admission::take(&taken, 2).expect("room again");
        assert_eq!(taken.load(Ordering::Acquire), 2);
        drop((second, third));
        assert_eq!(taken.load(Ordering::Acquire), 0);
    }
}
