//! The runtime handle: starts a node's actor tree and is how every surface (HTTP,
//! CLI, SDK) submits turns, cancels them and shuts the node down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use facio_services::config::Config;
use facio_services::domain::{RunId, SessionKey, TenantId};
use facio_services::providers::ProviderRegistry;
use facio_services::review::ReviewId;
use facio_services::store::ReviewRecord;
use facio_services::store::{Store, StoreError};
use facio_services::tools::{ToolRegistry, Workspace};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::context::Notice;
pub use crate::gate::{ReviewDecision, ReviewError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::context::NodeContext;
use crate::node::{NodeArgs, NodeMsg, NodeRefs, NodeSupervisor};
use crate::peers::{Peers, SessionOp, SessionOpResult};
use crate::recovery::{RecoveryReport, recover};
use crate::session::{SessionMsg, SupervisorMsg, TurnInput};
use crate::turn::{Origin, TurnEvent, TurnHooks, TurnSummary};

/// Events buffered per turn before a slow reader holds the turn back.
const EVENT_BUFFER: usize = 256;

/// Notices buffered for slow listeners (they re-read the store when they lag).
const NOTICE_BUFFER: usize = 1024;

/// Most tool calls running at once on a node.
const TOOL_CAPACITY: usize = 256;

/// What a node runs with.
pub struct RuntimeDeps {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub providers: ProviderRegistry,
    pub tools: ToolRegistry,
    pub workspace: Workspace,
    /// Encrypts credentials (password answers to reviews).
    pub vault: facio_services::vault::Vault,
    /// Close turns left running by a previous process. Only the process that owns the
    /// store (the gateway) should do this; a one-shot CLI run next to it must not.
    pub recover_on_start: bool,
}

/// A request for one turn.
pub struct TurnRequest {
    pub tenant: TenantId,
    pub session_key: SessionKey,
    pub input: String,
    pub origin: Origin,
    pub hooks: Option<Arc<dyn TurnHooks>>,
    /// The model this turn calls (an OpenAI request's `model`), resolved like
    /// `agents.defaults.model`; `None`: the configured default.
    pub model: Option<String>,
}

/// Why the runtime could not take a request.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the runtime is shutting down and accepts no new turns")]
    ShuttingDown,
    #[error("the runtime's actors are not running: {0}")]
    Unavailable(String),
    #[error("could not start the runtime: {0}")]
    Start(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the turn ended without reporting its outcome")]
    Lost,
    #[error("the turn could not be accepted: {0}")]
    NotAccepted(String),
    /// The store is at capacity: nothing was stored; try again shortly.
    #[error("the node is busy: {0}")]
    Busy(String),
    #[error(
        "the turn was dropped before it started (its session was stopped or its actor ended); \
         nothing of it was stored"
    )]
    Dropped,
}

/// A running node.
pub struct Runtime {
    refs: Arc<NodeRefs>,
    node: ActorRef<NodeMsg>,
    deps: Arc<NodeContext>,
    accepting: AtomicBool,
    /// Past draining: its turns are done and its sessions being given back; it runs
    /// nothing more.
    closing: AtomicBool,
    /// Cancelled once the node has given its sessions back.
    closed: CancellationToken,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// New turns sent towards their session actors and not yet taken by them.
    intake: Arc<std::sync::atomic::AtomicUsize>,
}

/// Most new turns in the node's actor mailboxes at once (sent, not yet taken by their
/// session actor); one more is refused as busy, nothing stored.
const INTAKE_CAPACITY: usize = 4096;

impl Runtime {
    /// Starts the actor tree (after closing turns a previous process left running,
    /// when asked to).
    pub async fn start(deps: RuntimeDeps) -> Result<Runtime, RuntimeError> {
        let node = deps
            .config
            .cluster
            .node()
            .map_err(|e| RuntimeError::Start(format!("cluster.nodeId: {e}")))?;
        let mut in_doubt = Vec::new();
        let mut recovered = Vec::new();
        let mut continued = Vec::new();
        if deps.recover_on_start {
            let tools = deps.tools.clone();
            let side_effecting = move |name: &str| {
                tools.risk(name) != Some(facio_services::tools::RiskTier::ReadOnly)
            };
            let mut tenants = deps.store.audit_tenants().await?;
            if !tenants.contains(&TenantId::default_tenant()) {
                tenants.push(TenantId::default_tenant());
            }
            recovered.clone_from(&tenants);
            for tenant in tenants {
                let RecoveryReport {
                    interrupted_runs,
                    orphaned_tool_calls,
                    in_doubt: doubts,
                    continued: going_on,
                } = recover(
                    deps.store.as_ref(),
                    &tenant,
                    &side_effecting,
                    &node,
                    deps.config.cluster.lease_ttl(),
                )
                .await?;
                in_doubt.extend(
                    doubts
                        .into_iter()
                        .map(|(run, call, lease)| (tenant.clone(), run, call, lease)),
                );
                continued.extend(going_on.into_iter().map(|key| (tenant.clone(), key)));
                if interrupted_runs > 0 {
                    tracing::warn!(
                        tenant = %tenant,
                        interrupted_runs,
                        orphaned_tool_calls,
                        "closed turns that were running when the process last stopped"
                    );
                }
            }
        }

        let refs = Arc::new(NodeRefs::default());
        let idle_after = Duration::from_secs(deps.config.agents.defaults.idle_passivate_s.max(1));
        let mut specs = deps.tools.specs();
        specs.extend(facio_services::review::hitl_tool_specs());
        specs.push(facio_services::mcp::manage_mcp_spec());
        specs.push(facio_services::a2a_client::call_agent_spec());
        specs.push(facio_services::channels::message_spec());
        specs.push(facio_services::cron::cron_spec());
        let a2a = facio_services::a2a_client::A2aPeers::new(deps.store.clone());
        let cron = facio_services::cron::CronJobs::new(deps.store.clone());
        let tenants: Arc<facio_services::tenant_cache::TenantCache> = Arc::default();
        let mcp = {
            let (cache, store, vault) = (tenants.clone(), deps.store.clone(), deps.vault.clone());
            facio_services::mcp::McpHub::new(
                deps.config.tools.mcp_servers.clone(),
                deps.store.clone(),
                move |tenant| {
                    let (cache, store, vault) = (cache.clone(), store.clone(), vault.clone());
                    Box::pin(async move {
                        cache
                            .credentials(store.as_ref(), &vault, &tenant)
                            .await
                            .map_err(|e| e.to_string())
                    })
                },
            )
        };
        let turn_deps = Arc::new(NodeContext {
            mcp,
            a2a,
            cron,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            specs: specs.into(),
            config: deps.config,
            store: deps.store,
            providers: deps.providers,
            tools: deps.tools,
            workspace: deps.workspace,
            refs: refs.clone(),
            notices: tokio::sync::broadcast::channel(NOTICE_BUFFER).0,
            vault: deps.vault,
            node,
            prompts: facio_services::prompt_cache::SystemPromptCache::default(),
            tenants,
            peers: std::sync::OnceLock::new(),
            background: crate::background::Background::default(),
            gates: crate::review_timers::Timers::default(),
            draining: AtomicBool::new(false),
        });
        for (tenant, run, call, lease) in in_doubt {
            tracing::warn!(run = %run.run_id, tool = %call.name, "a tool call was running when the process stopped; asking a human");
            // The gate is the session's step, written under the lease recovery took.
            crate::gate::open_gate(
                &turn_deps,
                crate::gate::in_doubt_request(tenant, lease.epoch, &run, &call),
            )
            .await?;
            turn_deps.store.release_lease(&lease).await?;
        }
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let args = NodeArgs {
            deps: turn_deps.clone(),
            refs: refs.clone(),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            idle_after,
            tool_capacity: TOOL_CAPACITY,
        };
        let (node, _) = Actor::spawn(None, NodeSupervisor, args)
            .await
            .map_err(|e| RuntimeError::Start(e.to_string()))?;
        // Reviews that were pending when the process last stopped get their timers and
        // Placet followers back; in a cluster, once the node knows its peers.
        if turn_deps.config.cluster.redis_url.is_none() {
            crate::gate::adopt(&turn_deps).await;
        }
        let background = &turn_deps.background;
        background.spawn(keep_leases(turn_deps.clone()));
        background.spawn(keep_sealed(turn_deps.clone()));
        background.spawn(sweep(turn_deps.clone(), refs.clone()));
        background.spawn(crate::scheduler::keep_schedule(
            turn_deps.clone(),
            refs.clone(),
        ));
        background.spawn(crate::gate::keep_timers(turn_deps.clone()));
        let runtime = Runtime {
            refs,
            node,
            deps: turn_deps,
            accepting: AtomicBool::new(true),
            closing: AtomicBool::new(false),
            closed: CancellationToken::new(),
            shutdown,
            tracker,
            intake: Arc::default(),
        };
        for tenant in &recovered {
            runtime.requeue(tenant).await?;
        }
        // Turns that were running when the process stopped go on from their last
        // recorded step: their sessions' actors take them over.
        for address in continued {
            tracing::warn!(session = %address.1, "a turn that was running when the process stopped goes on");
            runtime
                .sessions()?
                .cast(SupervisorMsg::Route(address, SessionMsg::Wake))
                .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        }
        Ok(runtime)
    }

    /// Turns that were acknowledged and waiting when the process stopped go back to
    /// their sessions: each such session is woken, and its activation takes them from
    /// the store, oldest first.
    async fn requeue(&self, tenant: &TenantId) -> Result<(), RuntimeError> {
        let mut woken = std::collections::HashSet::new();
        for run in self.deps.store.queued_runs(tenant).await? {
            if !woken.insert(run.session_key.clone()) {
                continue;
            }
            tracing::info!(session = %run.session_key, "turns queued before the restart wait again");
            self.sessions()?
                .cast(SupervisorMsg::Route(
                    (tenant.clone(), run.session_key),
                    SessionMsg::Wake,
                ))
                .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    /// Run and review changes as they happen.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.deps.notices.subscribe()
    }

    /// Waits (at most `limit`) until `run_id` has ended (completed, failed, cancelled
    /// or interrupted, past any review), on this node or another: the run as it ended,
    /// `None` when it did not end in time or does not exist.
    pub async fn until_ended(
        &self,
        tenant: &TenantId,
        run_id: &RunId,
        limit: Duration,
    ) -> Option<facio_services::store::RunRecord> {
        use facio_services::store::RunStatus;
        let mut notices = self.notices();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.deps.store.get_run(tenant, run_id).await {
                Ok(Some(run))
                    if !matches!(
                        run.status,
                        RunStatus::Queued | RunStatus::Running | RunStatus::AwaitingReview
                    ) =>
                {
                    return Some(run);
                }
                Ok(None) => return None,
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(error = %e, run = %run_id, "reading a run to follow"),
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            // Another node's run moves without a notice here: look again now and then.
            let _ = tokio::time::timeout(Duration::from_millis(500), notices.recv()).await;
        }
    }

    /// Applies a human's decision to a pending review and resumes its run. A second
    /// decision gets [`ReviewError::Closed`]; the gated call runs at most once.
    pub async fn decide_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
        decision: ReviewDecision,
    ) -> Result<ReviewRecord, ReviewError> {
        crate::gate::decide(&self.deps, tenant, id, decision).await
    }

    pub fn config(&self) -> &Config {
        &self.deps.config
    }

    /// Seals and opens credential values.
    pub fn vault(&self) -> &facio_services::vault::Vault {
        &self.deps.vault
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.deps.store
    }

    /// Tenants' settings, policy and credentials as turns see them; a surface that
    /// changes one of them tells it with [`TenantCache::changed`] once the write is
    /// committed.
    ///
    /// [`TenantCache::changed`]: facio_services::tenant_cache::TenantCache::changed
    pub fn tenant_cache(&self) -> &Arc<facio_services::tenant_cache::TenantCache> {
        &self.deps.tenants
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.deps.tools
    }

    /// Every tenant's MCP servers on this node.
    pub fn mcp(&self) -> &Arc<facio_services::mcp::McpHub> {
        &self.deps.mcp
    }

    /// Every tenant's A2A peers.
    pub fn a2a_peers(&self) -> &Arc<facio_services::a2a_client::A2aPeers> {
        &self.deps.a2a
    }

    fn sessions(&self) -> Result<ActorRef<SupervisorMsg>, RuntimeError> {
        self.refs.sessions().ok_or_else(|| {
            RuntimeError::Unavailable("the session supervisor is not running".into())
        })
    }

    /// Queues a turn on its session and returns its run id and its progress events
    /// (always ending with [`TurnEvent::Finished`]) once the turn's accept step has
    /// committed: an acknowledged run is in the store, whatever happens to the process
    /// after. A turn queued behind another of its session is acknowledged once its
    /// queued record committed (it survives a crash while it waits and starts again
    /// after a restart). Nothing is locked while it waits.
    pub async fn submit(
        &self,
        request: TurnRequest,
    ) -> Result<(RunId, mpsc::Receiver<TurnEvent>), RuntimeError> {
        // A draining node still takes turns of the sessions it holds (they finish
        // within the grace period); new sessions go to other nodes.
        if !self.accepting.load(Ordering::Acquire)
            && (self.closing() || !self.holds(&request.tenant, &request.session_key).await)
        {
            return Err(RuntimeError::ShuttingDown);
        }
        let admission =
            crate::session::Admission::take(&self.intake, INTAKE_CAPACITY).ok_or_else(|| {
                RuntimeError::Busy(format!(
                    "the node has {INTAKE_CAPACITY} turns on their way to their sessions; try \
                     again shortly"
                ))
            })?;
        let run_id = RunId::generate();
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let (accepted, acceptance) = oneshot::channel();
        let input = TurnInput {
            run_id: run_id.clone(),
            input: request.input,
            origin: request.origin,
            hooks: request.hooks,
            model: request.model,
            events: Some(events),
            resume: false,
            continues: false,
            accepted: Some(accepted),
            recording: false,
            stored: false,
        };
        self.sessions()?
            .cast(SupervisorMsg::Route(
                (request.tenant, request.session_key),
                SessionMsg::Submit(Box::new(input), admission),
            ))
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        match acceptance.await {
            Ok(Ok(())) => Ok((run_id, receiver)),
            Ok(Err(crate::turn::NotAccepted::Busy(why))) => Err(RuntimeError::Busy(why)),
            Ok(Err(crate::turn::NotAccepted::Draining)) => Err(RuntimeError::ShuttingDown),
            Ok(Err(crate::turn::NotAccepted::Failed(reason))) => {
                Err(RuntimeError::NotAccepted(reason))
            }
            // A draining node's session gave itself up before taking it.
            Err(_) if self.draining() => Err(RuntimeError::ShuttingDown),
            Err(_) => Err(RuntimeError::Dropped),
        }
    }

    /// Runs a turn to its end.
    pub async fn run(&self, request: TurnRequest) -> Result<TurnSummary, RuntimeError> {
        let (_, mut events) = self.submit(request).await?;
        while let Some(event) = events.recv().await {
            if let TurnEvent::Finished(summary) = event {
                return Ok(*summary);
            }
        }
        Err(RuntimeError::Lost)
    }

    /// Cancels the session's running turn and any queued behind it. Returns whether
    /// anything was cancelled.
    pub async fn cancel(&self, tenant: TenantId, key: SessionKey) -> Result<bool, RuntimeError> {
        if let Some((owner, peers)) =
            crate::context::holder_elsewhere(&self.deps, &tenant, &key).await
        {
            return match peers.ask(&owner, &tenant, &key, SessionOp::Stop).await {
                Ok(SessionOpResult::Done { changed }) => Ok(changed),
                Ok(SessionOpResult::Busy) => Ok(false),
                Err(e) => Err(RuntimeError::Unavailable(format!(
                    "the session is held by node {owner}, which did not answer: {e}"
                ))),
            };
        }
        self.cancel_here(tenant, key).await
    }

    async fn cancel_here(&self, tenant: TenantId, key: SessionKey) -> Result<bool, RuntimeError> {
        let sessions = self.sessions()?;
        let result = sessions
            .call(
                |reply| SupervisorMsg::Route((tenant, key), SessionMsg::Cancel(reply)),
                Some(Duration::from_secs(10)),
            )
            .await
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        match result {
            CallResult::Success(cancelled) => Ok(cancelled),
            CallResult::Timeout | CallResult::SenderError => Err(RuntimeError::Unavailable(
                "the session did not answer".into(),
            )),
        }
    }

    /// Deletes a session's history, runs and reviews (the audit log and usage stay),
    /// unless a turn of it is running, queued or waiting for a review. Returns whether
    /// the session existed.
    pub async fn reset_session(
        &self,
        tenant: TenantId,
        key: SessionKey,
        record: Option<facio_services::store::NewAuditEvent>,
    ) -> Result<Result<bool, crate::session::ResetError>, RuntimeError> {
        if let Some((owner, peers)) =
            crate::context::holder_elsewhere(&self.deps, &tenant, &key).await
        {
            return match peers
                .ask(&owner, &tenant, &key, SessionOp::Reset(record))
                .await
            {
                Ok(SessionOpResult::Done { changed }) => Ok(Ok(changed)),
                Ok(SessionOpResult::Busy) => Ok(Err(crate::session::ResetError::Busy)),
                Err(e) => Err(RuntimeError::Unavailable(format!(
                    "the session is held by node {owner}, which did not answer: {e}"
                ))),
            };
        }
        self.reset_here(tenant, key, record).await
    }

    async fn reset_here(
        &self,
        tenant: TenantId,
        key: SessionKey,
        record: Option<facio_services::store::NewAuditEvent>,
    ) -> Result<Result<bool, crate::session::ResetError>, RuntimeError> {
        let result = self
            .sessions()?
            .call(
                |reply| {
                    SupervisorMsg::Route(
                        (tenant, key),
                        SessionMsg::Reset(record.map(Box::new), reply),
                    )
                },
                Some(Duration::from_secs(30)),
            )
            .await
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        match result {
            CallResult::Success(outcome) => Ok(outcome),
            CallResult::Timeout | CallResult::SenderError => Err(RuntimeError::Unavailable(
                "the session did not answer".into(),
            )),
        }
    }

    /// Carries out `op` on a session of this node, asked by another node that found
    /// this one holding the session's lease (never passed on again).
    pub async fn session_op(
        &self,
        tenant: TenantId,
        key: SessionKey,
        op: SessionOp,
    ) -> Result<SessionOpResult, RuntimeError> {
        match op {
            SessionOp::Poke => {
                self.sessions()?
                    .cast(SupervisorMsg::Route((tenant, key), SessionMsg::Poke))
                    .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
                Ok(SessionOpResult::Done { changed: true })
            }
            SessionOp::Stop => Ok(SessionOpResult::Done {
                changed: self.cancel_here(tenant, key).await?,
            }),
            SessionOp::Reset(record) => Ok(match self.reset_here(tenant, key, record).await? {
                Ok(changed) => SessionOpResult::Done { changed },
                Err(crate::session::ResetError::Busy) => SessionOpResult::Busy,
                Err(crate::session::ResetError::Store(e)) => {
                    return Err(RuntimeError::Unavailable(e));
                }
            }),
        }
    }

    /// An entry of this node's inbox: something of the session (a review closed on
    /// another node) is in the store. Goes to the session where it is held: here, or
    /// on to the live node holding it; a session nobody holds is taken here. `false`
    /// while the session is still held by a node that is gone: ask again later.
    pub async fn take_notice(&self, tenant: TenantId, key: SessionKey) -> bool {
        crate::node::pass_notice(&self.deps, &self.refs, &tenant, &key).await
    }

    /// Every tenant's scheduled jobs.
    pub fn cron_jobs(&self) -> &Arc<facio_services::cron::CronJobs> {
        &self.deps.cron
    }

    /// Gives `job`'s session a turn now, as its schedule would (recorded as `actor`'s).
    pub async fn run_job_now(
        &self,
        tenant: &TenantId,
        job: &facio_services::cron::CronJob,
        actor: &str,
    ) -> Result<RunId, RuntimeError> {
        if self.draining() {
            return Err(RuntimeError::Unavailable(
                "the node is shutting down".into(),
            ));
        }
        let run = RunId::generate();
        crate::scheduler::fire(&self.deps, tenant, job, &run, None, actor)
            .await
            .map_err(RuntimeError::Unavailable)?;
        crate::node::pass_notice(&self.deps, &self.refs, tenant, &job.session_key).await;
        Ok(run)
    }

    /// Joins this node to its cluster: from now on a session held by another live
    /// node is stopped, reset and resumed there, and the sweep leaves it alone.
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        let _ = self.deps.peers.set(peers);
        // Pending reviews' timers and Placet followers are divided among the nodes
        // from now on: take this node's share.
        let deps = self.deps.clone();
        self.deps
            .background
            .spawn(async move { crate::gate::adopt(&deps).await });
    }

    /// This node's id in session leases.
    pub fn node_id(&self) -> &facio_services::domain::NodeId {
        &self.deps.node
    }

    /// Whether the node is draining (a shutdown began): it takes no new sessions.
    pub fn draining(&self) -> bool {
        !self.accepting.load(Ordering::Acquire)
    }

    /// Stops taking new sessions (a shutdown began; [`Runtime::shutdown`] does this
    /// too): turns of the sessions the node holds are still taken.
    pub fn begin_drain(&self) {
        self.accepting.store(false, Ordering::Release);
        if !self.deps.draining.swap(true, Ordering::AcqRel)
            && let Ok(sessions) = self.sessions()
        {
            // Idle sessions give their leases back now, busy ones once idle.
            let _ = sessions.cast(SupervisorMsg::Drain);
        }
    }

    /// Whether the node is past draining and runs nothing more: its sessions are
    /// being given back ([`Runtime::wait_closed`]).
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Waits (up to `within`) until a closing node has given its sessions back.
    pub async fn wait_closed(&self, within: Duration) {
        let _ = tokio::time::timeout(within, self.closed.cancelled()).await;
    }

    /// Whether this node holds the session's live lease.
    pub async fn holds(&self, tenant: &TenantId, key: &SessionKey) -> bool {
        matches!(
            self.deps.store.get_lease(tenant, key).await,
            Ok(Some(lease)) if lease.owner == self.deps.node && lease.expires_at > chrono::Utc::now()
        )
    }

    /// Sessions currently held in memory (the rest are passivated in the store).
    pub async fn active_sessions(&self) -> Result<usize, RuntimeError> {
        let result = self
            .sessions()?
            .call(SupervisorMsg::ActiveCount, Some(Duration::from_secs(10)))
            .await
            .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        match result {
            CallResult::Success(count) => Ok(count),
            CallResult::Timeout | CallResult::SenderError => Err(RuntimeError::Unavailable(
                "the session supervisor did not answer".into(),
            )),
        }
    }

    /// Stops accepting turns, lets running turns finish for up to `grace`, then stops
    /// the rest at their next step (their progress is already in the store and they
    /// are recorded as interrupted), and stops the actors.
    pub async fn shutdown(&self, grace: Duration) {
        self.begin_drain();
        self.tracker.close();
        let started = std::time::Instant::now();
        let mut finished = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        self.closing.store(true, Ordering::Release);
        if finished {
            // A turn of a held session taken just before closing finishes too, within
            // what is left of the grace period.
            let left = grace
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1));
            finished = tokio::time::timeout(left, self.tracker.wait())
                .await
                .is_ok();
        }
        if !finished {
            tracing::warn!(
                running = self.tracker.len(),
                "turns still running after the grace period; interrupting them"
            );
            self.shutdown.cancel();
            // Interrupted turns only record their end; this is quick unless the store hangs.
            let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
        }
        // What the last turns appended is sealed before the node goes.
        if let Err(e) = self.deps.store.seal_audit().await {
            tracing::error!(error = %e, "cannot seal the audit log at shutdown");
        }
        self.node.stop(Some("shutdown".to_owned()));
        // Its sessions are free for other nodes at once, not when the leases run out
        // (an actor gives its own back as it stops, but the process may end first).
        self.shutdown.cancel();
        self.deps.background.stop(Duration::from_secs(5)).await;
        self.deps.mcp.shutdown().await;
        match self.deps.store.release_leases(&self.deps.node).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "gave back this node's session leases"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot give back this node's session leases; they run out by themselves")
            }
        }
        self.closed.cancel();
    }
}

/// How often the audit log's moved chains are sealed by a checkpoint (SQLite also
/// seals as each unit of work ends; on PostgreSQL this is the only sealer).
const SEAL_EVERY: Duration = Duration::from_secs(1);

/// Seals the audit log every [`SEAL_EVERY`] until the node shuts down.
async fn keep_sealed(deps: Arc<NodeContext>) {
    let mut every = tokio::time::interval(SEAL_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = deps.store.seal_audit().await {
            tracing::error!(error = %e, "cannot seal the audit log");
        }
    }
}

/// The node's heartbeat on its session leases: every third of their time to live,
/// one write extends all of them, until the node shuts down. A session actor that
/// stops gives its lease back itself.
async fn keep_leases(deps: Arc<NodeContext>) {
    let ttl = deps.config.cluster.lease_ttl();
    let mut every = tokio::time::interval(ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = deps.store.renew_leases(&deps.node, ttl).await {
            tracing::error!(node = %deps.node, error = %e, "cannot renew this node's session leases");
        }
    }
}

/// Every lease TTL, until the node shuts down: work in the store that no live node
/// holds goes to the node rendezvous hashing prefers for it (a node that died left it
/// running, queued or resumable), and runs of this node's own sessions whose review
/// closed without the resume reaching them resume. What a message would have brought
/// (a decision on another node, a takeover) arrives this way when the message is lost.
async fn sweep(deps: Arc<NodeContext>, refs: Arc<NodeRefs>) {
    let mut every = tokio::time::interval(deps.config.cluster.lease_ttl());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    let mut generation = deps.peers.get().map(|p| p.generation());
    loop {
        every.tick().await;
        // The live nodes changed: pending reviews a departed node watched are
        // watched here if they are this node's share now.
        let now = deps.peers.get().map(|p| p.generation());
        if now != generation {
            generation = now;
            crate::gate::adopt(&deps).await;
        }
        if let Err(e) = sweep_once(&deps, &refs).await {
            tracing::warn!(error = %e, "the sweep for unheld sessions failed; it runs again");
        }
    }
}

async fn sweep_once(deps: &Arc<NodeContext>, refs: &NodeRefs) -> Result<(), StoreError> {
    let Some(sessions) = refs.sessions() else {
        return Ok(());
    };
    let store = &deps.store;
    let mut tenants = store.audit_tenants().await?;
    if !tenants.contains(&TenantId::default_tenant()) {
        tenants.push(TenantId::default_tenant());
    }
    let now = chrono::Utc::now();
    for tenant in tenants {
        let mut seen = std::collections::HashSet::new();
        let awaiting = store.resumable_runs(&tenant).await?;
        // Queued runs count like resumable ones: one given to a session of this node
        // from outside (a scheduled job) whose notice was lost is taken now.
        let queued = store.queued_runs(&tenant).await?;
        let running = store.running_runs(&tenant).await?;
        for (run, resumable) in awaiting
            .into_iter()
            .chain(queued)
            .map(|r| (r, true))
            .chain(running.into_iter().map(|r| (r, false)))
        {
            if !seen.insert(run.session_key.clone()) {
                continue;
            }
            let lease = store.get_lease(&tenant, &run.session_key).await?;
            let held = lease.as_ref().filter(|l| l.expires_at > now);
            let message = match held {
                // Ours: only a resume can have gone missing.
                Some(l) if l.owner == deps.node => resumable.then_some(SessionMsg::Poke),
                Some(_) => None,
                None => {
                    let preferred = deps
                        .peers
                        .get()
                        .map(|p| p.preferred(&tenant, &run.session_key));
                    (preferred.is_none() || preferred.as_ref() == Some(&deps.node))
                        .then_some(SessionMsg::Poke)
                }
            };
            if let Some(message) = message {
                tracing::debug!(session = %run.session_key, "the sweep hands a session its stored work");
                let _ = sessions.cast(SupervisorMsg::Route(
                    (tenant.clone(), run.session_key.clone()),
                    message,
                ));
            }
        }
    }
    Ok(())
}
