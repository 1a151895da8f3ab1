//! The session actor: one per live session key. It serializes turns of its session,
//! runs each as a task (never awaiting a model or tool in `handle`), and passivates
//! when idle; the store holds everything needed to activate it again.

mod messages;
mod state;
mod supervisor;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio_util::sync::CancellationToken;

pub use messages::{Admission, ResetError, SessionMsg, SupervisorMsg, TurnInput};
pub use state::SessionArgs;
use state::{RunningTurn, SessionState};
pub use supervisor::{SessionSupervisor, SupervisorArgs};

use facio_services::review::ReviewOutcome;
use facio_services::store::{ReviewFilter, ReviewStatus};

use crate::turn::{StopReason, TurnTask};

pub struct SessionActor;

/// Most turns waiting in one session's queue; beyond it a new one is refused as busy
/// (nothing of it stored), so one flooded session cannot hold a node's memory.
const MAX_QUEUED: usize = 256;

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
        // Before anything the supervisor routes here: the supervisor only spawns, so
        // the store work of activating runs in this actor, not in the supervisor.
        myself.send_message(SessionMsg::Activate)?;
        Ok(SessionState::new(args))
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Give the session back so its next owner need not wait for the lease to
        // run out.
        if let Some(lease) = state.lease.take()
            && let Err(e) = state.args.deps.store.release_lease(&lease).await
        {
            tracing::warn!(session = %lease.session_key, error = %e, "cannot release a session lease");
        }
        queued_changed(state.queue.len(), 0);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let queued = state.queue.len();
        let handled = self.handle_message(myself, message, state).await;
        queued_changed(queued, state.queue.len());
        handled
    }
}

/// Moves the node's queued-turns gauge by how a session's queue changed.
fn queued_changed(before: usize, after: usize) {
    if before != after {
        let delta =
            i64::try_from(after).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX);
        facio_services::telemetry::metrics()
            .queued_turns
            .add(delta, &[]);
    }
}

impl SessionActor {
    async fn handle_message(
        &self,
        myself: ActorRef<SessionMsg>,
        message: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Activate => {
                if draining(state) {
                    // A draining node takes no session; its callers are told so.
                    myself.stop(Some("draining".to_owned()));
                    return Ok(());
                }
                let (tenant, key) = &state.args.address;
                let deps = &state.args.deps;
                let ttl = deps.config.cluster.lease_ttl();
                let acquired = deps.store.acquire_lease(tenant, key, &deps.node, ttl).await;
                // Held by a node that left the cluster without giving it back (its
                // registration lapsed: dead, or frozen past the TTL): taken now, not
                // when the lease runs out; its new epoch fences the old holder.
                let gone = match &acquired {
                    Err(facio_services::store::StoreError::LeaseHeld { owner, .. }) => {
                        gone_from_cluster(deps, owner)
                    }
                    _ => None,
                };
                let taken = match gone {
                    Some(gone) => {
                        tracing::info!(session = %key, holder = %gone,
                            "taking the session over from a node that left the cluster");
                        let taken = deps
                            .store
                            .take_lease(tenant, key, &deps.node, Some(&gone), ttl)
                            .await;
                        if taken.is_ok() {
                            facio_services::telemetry::metrics()
                                .lease_takeovers
                                .add(1, &[facio_services::telemetry::metrics::tenant(tenant)]);
                        }
                        taken
                    }
                    None => acquired,
                };
                match taken {
                    Ok(lease) => state.lease = Some(lease),
                    Err(e) => {
                        // Queued callers hear that their turn was dropped, unstored.
                        tracing::warn!(session = %key, error = %e, "cannot take the session");
                        myself.stop(Some(format!("cannot take the session: {e}")));
                        return Ok(());
                    }
                }
                take_over(state).await?;
                let (tenant, key) = &state.args.address;
                let deps = &state.args.deps;
                let pending = ReviewFilter {
                    status: Some(ReviewStatus::Pending),
                    session_key: Some(key.clone()),
                    limit: Some(1),
                    ..ReviewFilter::default()
                };
                // A passivated or restarted session may have a run waiting for a human.
                let waiting = deps.store.list_reviews(tenant, &pending).await?;
                state.waiting = waiting.into_iter().next().map(|r| r.run_id);
                reconcile(state).await?;
                start_next(&myself, state);
            }
            SessionMsg::Queued { run_id, stored } => {
                if stored {
                    match state.queue.iter_mut().find(|i| i.run_id == run_id) {
                        Some(input) => {
                            input.recording = false;
                            input.stored = true;
                        }
                        // A stop came while it was being recorded: it is on record
                        // now, and ends cancelled like the other stopped ones.
                        None => cancel_queued(&state.args, std::iter::once(&run_id)).await,
                    }
                } else {
                    // Its caller was told it was not accepted: it never runs.
                    state.queue.retain(|i| i.run_id != run_id);
                }
                start_next(&myself, state);
            }
            // Activation (which takes the session's stored work) was all it was for.
            SessionMsg::Wake => state.received += 1,
            SessionMsg::Poke => {
                state.received += 1;
                adopt_queued(state).await?;
                reconcile(state).await?;
                start_next(&myself, state);
            }
            SessionMsg::Submit(input, admission) => {
                // Taken out of the mailbox: its place in the intake is free.
                drop(admission);
                let mut input = *input;
                state.received += 1;
                if draining(state) && state.is_idle() {
                    // Given up rather than started: the turn goes to another node.
                    if let Some(accepted) = input.accepted.take() {
                        let _ = accepted.send(Err(crate::turn::NotAccepted::Draining));
                    }
                    myself.stop(Some("draining".to_owned()));
                    return Ok(());
                }
                if state.queue.len() >= MAX_QUEUED {
                    if let Some(accepted) = input.accepted.take() {
                        let _ = accepted.send(Err(crate::turn::NotAccepted::Busy(format!(
                            "session {} already has {MAX_QUEUED} turns waiting; try again once some have run",
                            state.args.address.1
                        ))));
                    }
                    return Ok(());
                }
                let run_id = input.run_id.clone();
                state.queue.push_back(input);
                start_next(&myself, state);
                // A turn that has to wait behind another of its session (one running,
                // or one waiting for a human for as long as that takes) is recorded
                // as queued now, and its caller acknowledged once that committed: it
                // must not hang until the turn starts, and an acknowledged turn must
                // survive a crash while it waits.
                let epoch = state.lease.as_ref().map(|l| l.epoch);
                if let Some(epoch) = epoch
                    && let Some(queued) = state.queue.iter_mut().find(|i| i.run_id == run_id)
                    && let Some(accepted) = queued.accepted.take()
                {
                    queued.recording = true;
                    let deps = state.args.deps.clone();
                    let (tenant, key) = state.args.address.clone();
                    let (input, origin, model) =
                        (queued.input.clone(), queued.origin, queued.model.clone());
                    let myself = myself.clone();
                    state.args.tracker.spawn(async move {
                        let result = crate::turn::record_queued(
                            &deps,
                            &tenant,
                            &key,
                            epoch,
                            &run_id,
                            &input,
                            origin,
                            model.as_deref(),
                        )
                        .await;
                        let stored = result.is_ok();
                        let _ = accepted.send(result);
                        let _ = myself.cast(SessionMsg::Queued { run_id, stored });
                    });
                }
            }
            SessionMsg::Resume { run_id, origin } => {
                state.received += 1;
                resume(state, run_id, origin);
                start_next(&myself, state);
            }
            SessionMsg::Cancel(reply) => {
                state.received += 1;
                let mut cancelled = !state.queue.is_empty();
                let dropped: Vec<_> = state.queue.drain(..).filter(|i| i.stored).collect();
                // Queued turns on record end as cancelled, never started.
                cancel_queued(&state.args, dropped.iter().map(|i| &i.run_id)).await;
                if let Some(running) = &state.running {
                    running.cancel.cancel();
                    cancelled = true;
                }
                if let Some(run_id) = state.waiting.clone() {
                    // The run waiting for a human is stopped too: its reviews are
                    // withdrawn, and it resumes only to record that and end.
                    let withdrawn = withdraw_reviews(&state.args, &run_id).await;
                    cancelled |= withdrawn > 0;
                }
                let _ = reply.send(cancelled);
            }
            SessionMsg::Reset(record, reply) => {
                state.received += 1;
                let result = if state.running.is_some()
                    || !state.queue.is_empty()
                    || state.waiting.is_some()
                {
                    Err(ResetError::Busy)
                } else {
                    // Awaited here on purpose: no turn of this session may start until
                    // the delete is done.
                    let (tenant, key) = &state.args.address;
                    state.history = None;
                    match state
                        .args
                        .deps
                        .store
                        .delete_session(tenant, key, record.map(|r| *r))
                        .await
                    {
                        Ok(existed) => Ok(existed),
                        Err(facio_services::store::StoreError::Conflict(_)) => {
                            Err(ResetError::Busy)
                        }
                        Err(e) => Err(ResetError::Store(e.to_string())),
                    }
                };
                let _ = reply.send(result);
            }
            SessionMsg::TurnFinished(outcome) => {
                let finished_current = state
                    .running
                    .as_ref()
                    .is_some_and(|r| r.run_id == outcome.summary.run_id);
                if finished_current && matches!(outcome.summary.stop, StopReason::Fenced(_)) {
                    // Another owner holds the session now: stop without touching it
                    // (its lease is not ours to give back).
                    tracing::warn!(session = %state.args.address.1, "fenced off: another owner took the session");
                    state.lease = None;
                    state.running = None;
                    myself.stop(Some("fenced".to_owned()));
                    return Ok(());
                }
                if finished_current {
                    let stopped = state
                        .running
                        .take()
                        .is_some_and(|r| r.cancel.is_cancelled());
                    state.history = outcome.history;
                    if matches!(outcome.summary.stop, StopReason::AwaitingReview { .. }) {
                        state.waiting = Some(outcome.summary.run_id.clone());
                        state.history = None;
                        if stopped {
                            // The stop came while the review was being opened: withdraw
                            // it now, so the run still ends instead of waiting.
                            withdraw_reviews(&state.args, &outcome.summary.run_id).await;
                        }
                    }
                }
                start_next(&myself, state);
                if state.is_idle() && draining(state) {
                    myself.stop(Some("draining".to_owned()));
                    return Ok(());
                }
                if state.is_idle() {
                    state.idle_since = std::time::Instant::now();
                    myself.send_after(state.args.idle_after, || SessionMsg::IdleCheck);
                }
            }
            SessionMsg::Drain => {
                if state.is_idle() {
                    myself.stop(Some("draining".to_owned()));
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

/// `owner` (a lease holder), when it is known to have left the cluster: in cluster
/// mode, with the membership readable, and not registered. (Without a cluster, or
/// while the membership cannot be read, nobody is taken over early.)
fn gone_from_cluster(
    deps: &crate::context::NodeContext,
    owner: &str,
) -> Option<facio_services::domain::NodeId> {
    let peers = deps.peers.get()?;
    let owner = facio_services::domain::NodeId::new(owner).ok()?;
    (owner != deps.node && peers.knows_gone(&owner)).then_some(owner)
}

/// Whether the node is draining (its sessions give themselves up once idle).
fn draining(state: &SessionState) -> bool {
    state
        .args
        .deps
        .draining
        .load(std::sync::atomic::Ordering::Acquire)
}

/// Closes `run_id`'s pending reviews as cancelled (each close resumes the run, which
/// then ends as cancelled). Returns how many were withdrawn.
async fn withdraw_reviews(args: &SessionArgs, run_id: &facio_services::domain::RunId) -> usize {
    let (tenant, _) = &args.address;
    let filter = ReviewFilter {
        status: Some(ReviewStatus::Pending),
        run_id: Some(run_id.clone()),
        ..ReviewFilter::default()
    };
    let pending = match args.deps.store.list_reviews(tenant, &filter).await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::error!(run = %run_id, error = %e, "cannot list the reviews to withdraw");
            return 0;
        }
    };
    let mut withdrawn = 0;
    for review in pending {
        match crate::gate::close_review(
            &args.deps,
            tenant,
            &review.id,
            ReviewOutcome::Cancelled,
            Some("stop command"),
        )
        .await
        {
            Ok(_) => withdrawn += 1,
            // Decided a moment ago: the run resumes with that answer instead.
            Err(crate::gate::CloseError::Closed(_)) => {}
            Err(e) => tracing::error!(review = %review.id, error = %e, "cannot withdraw a review"),
        }
    }
    withdrawn
}

/// Queues `run` to resume first (its review closed), unless it already is running or
/// queued: a run resumes once.
fn resume(
    state: &mut SessionState,
    run: facio_services::domain::RunId,
    origin: crate::turn::Origin,
) {
    if state.waiting.as_ref() == Some(&run) {
        state.waiting = None;
    }
    if !resuming(state, &run) {
        state
            .queue
            .push_front(TurnInput::resumed(run, origin, false));
    }
}

/// Whether `run` is running or queued to resume here.
fn resuming(state: &SessionState, run: &facio_services::domain::RunId) -> bool {
    state.running.as_ref().is_some_and(|r| &r.run_id == run)
        || state.queue.iter().any(|i| i.resume && &i.run_id == run)
}

/// Runs of the session stopped at a review that has since closed, whose resume never
/// arrived here (it was decided on another node, or while no node held the session,
/// or this node died before resuming it): each resumes now, once.
async fn reconcile(state: &mut SessionState) -> Result<(), ActorProcessingErr> {
    let (tenant, key) = state.args.address.clone();
    let store = state.args.deps.store.clone();
    for run in store.awaiting_runs(&tenant, Some(&key)).await? {
        if resuming(state, &run.run_id) {
            continue;
        }
        let of_run = ReviewFilter {
            run_id: Some(run.run_id.clone()),
            limit: Some(100),
            ..ReviewFilter::default()
        };
        let reviews = store.list_reviews(&tenant, &of_run).await?;
        if reviews.is_empty() || reviews.iter().any(|r| r.status == ReviewStatus::Pending) {
            continue;
        }
        let origin = reviews
            .iter()
            .find_map(|r| crate::turn::Origin::parse(&r.origin))
            .unwrap_or(crate::turn::Origin::Api);
        tracing::info!(run = %run.run_id, session = %key, "resuming a run whose review was decided");
        resume(state, run.run_id, origin);
    }
    Ok(())
}

/// What a previous owner of the session left behind, taken over under this actor's
/// fresh lease: a run it left mid-turn (a node that died or was fenced, an actor that
/// failed) is closed as start-up recovery would (a side-effecting call that had
/// started goes to a human as in doubt), and its queued turns join this queue.
async fn take_over(state: &mut SessionState) -> Result<(), ActorProcessingErr> {
    let Some(epoch) = state.lease.as_ref().map(|l| l.epoch) else {
        return Ok(());
    };
    let (tenant, key) = state.args.address.clone();
    let deps = state.args.deps.clone();
    let store = deps.store.as_ref();
    let side_effecting =
        |name: &str| deps.tools.risk(name) != Some(facio_services::tools::RiskTier::ReadOnly);
    for run in store.unfinished_runs(&tenant, &key).await? {
        if run.status == facio_services::store::RunStatus::Queued {
            adopt(state, store, run).await?;
            continue;
        }
        // Nothing of it was running when its owner went (it waited for the model, or
        // its calls had not started): it goes on here from its last recorded step.
        if crate::recovery::can_continue(store, &tenant, &run, &side_effecting).await? {
            if resuming(state, &run.run_id) {
                continue;
            }
            let retried = crate::recovery::retry_read_only(store, &tenant, &run).await?;
            if retried > 0 {
                tracing::warn!(run = %run.run_id, calls = retried, "read-only calls cut off with their node run again");
            }
            tracing::warn!(run = %run.run_id, session = %key, "continuing a turn its previous owner left running");
            let origin = crate::turn::started_as(store, &tenant, &run.run_id)
                .await?
                .unwrap_or(crate::turn::Origin::Api);
            state
                .queue
                .push_back(TurnInput::resumed(run.run_id, origin, true));
            continue;
        }
        tracing::warn!(run = %run.run_id, session = %key, "taking over a turn its previous owner left running");
        let mut report = crate::recovery::RecoveryReport::default();
        let mut doubt = None;
        crate::recovery::recover_run(
            store,
            &tenant,
            &side_effecting,
            &run,
            &mut report,
            &mut doubt,
        )
        .await?;
        if let Some((run, call)) = doubt {
            crate::gate::open_gate(
                &deps,
                crate::gate::in_doubt_request(tenant.clone(), epoch, &run, &call),
            )
            .await?;
        }
    }
    Ok(())
}

/// Queued runs of the session in the store that its queue does not hold (given to
/// it from outside, by a scheduled job) join the queue, in the order they were given.
async fn adopt_queued(state: &mut SessionState) -> Result<(), ActorProcessingErr> {
    let (tenant, key) = state.args.address.clone();
    let store = state.args.deps.store.clone();
    for run in store.unfinished_runs(&tenant, &key).await? {
        if run.status == facio_services::store::RunStatus::Queued {
            adopt(state, store.as_ref(), run).await?;
        }
    }
    Ok(())
}

/// `run`, queued in the store, joins the queue unless it is in it already.
async fn adopt(
    state: &mut SessionState,
    store: &dyn facio_services::store::Store,
    run: facio_services::store::RunRecord,
) -> Result<(), ActorProcessingErr> {
    let known = state.queue.iter().any(|i| i.run_id == run.run_id)
        || state
            .running
            .as_ref()
            .is_some_and(|r| r.run_id == run.run_id);
    if known {
        return Ok(());
    }
    let (tenant, _) = &state.args.address;
    let (origin, model) = crate::turn::queued_as(store, tenant, &run.run_id)
        .await?
        .unwrap_or((crate::turn::Origin::Api, None));
    state.queue.push_back(TurnInput {
        run_id: run.run_id,
        input: run.input,
        origin,
        hooks: None,
        model,
        events: None,
        resume: false,
        continues: false,
        accepted: None,
        recording: false,
        stored: true,
    });
    Ok(())
}

/// Closes queued runs that a stop dropped before they started: `cancelled`, with
/// their `turn_finished` event.
async fn cancel_queued<'a>(
    args: &SessionArgs,
    runs: impl Iterator<Item = &'a facio_services::domain::RunId>,
) {
    let (tenant, key) = &args.address;
    for run_id in runs {
        let store = &args.deps.store;
        let closed = store
            .set_run_status(
                tenant,
                run_id,
                facio_services::store::RunStatus::Queued,
                facio_services::store::RunStatus::Cancelled,
            )
            .await;
        let event = facio_services::store::NewAuditEvent {
            kind: facio_services::store::AuditEventKind::TurnFinished,
            session_key: Some(key.clone()),
            run_id: Some(run_id.clone()),
            actor: "stop command".to_owned(),
            data: serde_json::json!({
                "status": "cancelled",
                "reason": "stopped before it started",
            }),
        };
        let recorded = match closed {
            Ok(true) => store.append_audit(tenant, event).await.map(|_| ()),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::error!(run = %run_id, error = %e, "cannot close a queued run that was stopped");
        }
    }
}

/// Starts the next queued turn as a task if none is running.
fn start_next(myself: &ActorRef<SessionMsg>, state: &mut SessionState) {
    if state.running.is_some() {
        return;
    }
    let Some(epoch) = state.lease.as_ref().map(|l| l.epoch) else {
        return;
    };
    if state.waiting.is_some() && !state.queue.front().is_some_and(|i| i.resume) {
        return;
    }
    // Its queued record is still being written: it starts once that committed.
    if state.queue.front().is_some_and(|i| i.recording) {
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
        epoch,
        run_id: input.run_id.clone(),
        input: input.input,
        origin: input.origin,
        hooks: input.hooks,
        model: input.model,
        events: input.events,
        cancel: cancel.clone(),
        shutdown: state.args.shutdown.clone(),
        resume: input.resume,
        continues: input.continues,
        workspace: std::sync::OnceLock::new(),
        settings: tokio::sync::OnceCell::new(),
        secrets: tokio::sync::OnceCell::new(),
        awaiting_answer: std::sync::Mutex::default(),
        accepted: input.accepted,
    };
    state.running = Some(RunningTurn {
        run_id: input.run_id,
        cancel,
    });
    // The task owns the cached history while it runs; it comes back with the outcome.
    let history = state.history.take();
    let myself = myself.clone();
    // Everything the turn logs names its tenant and run (the agent's `read_logs`
    // finds its own records by them).
    // It is the turn's `invoke_agent` span (GenAI conventions): a child of what sent
    // the message (the request, or the decision that resumed the run).
    let span = tracing::info_span!(
        "invoke_agent",
        otel.name = "invoke_agent facio",
        otel.kind = "internal",
        facio.tenant = %task.tenant,
        gen_ai.conversation.id = %task.key,
        facio.run.id = %task.run_id
    );
    state.args.tracker.spawn(tracing::Instrument::instrument(
        async move {
            let outcome = task.run(history).await;
            // Not under this turn's span: what the actor does next (the next queued
            // turn) is not part of this turn.
            let _ = tracing::Span::none()
                .in_scope(|| myself.cast(SessionMsg::TurnFinished(Box::new(outcome))));
        },
        span,
    ));
}
