//! The node-wide context: what a node's actors, gates and turns share (config, store,
//! providers, tools, the node's handles and background work), and the notices they
//! send. It sits below every actor module, so none of them imports another to reach it.

use std::sync::Arc;

use facio_services::config::Config;
use facio_services::domain::{NodeId, RunId, SessionKey, TenantId};
use facio_services::providers::ProviderRegistry;
use facio_services::review::ReviewId;
use facio_services::store::Store;
use facio_services::tools::{ToolRegistry, Workspace};
use ractor::ActorRef;

use crate::origin::Origin;
use crate::peers::Peers;
use crate::tool_pool::ToolPoolMsg;

/// What a node's actors, gates and turns share.
pub(crate) struct NodeContext {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub providers: ProviderRegistry,
    pub tools: ToolRegistry,
    pub workspace: Workspace,
    pub refs: Arc<dyn NodeHandles>,
    pub notices: tokio::sync::broadcast::Sender<Notice>,
    pub vault: facio_services::vault::Vault,
    /// What the model is offered: the registry's tools and the HITL tools, built once.
    pub specs: facio_services::tools::ToolSpecs,
    /// Each workspace's system prompt, rebuilt only when a file it reads changes.
    pub prompts: facio_services::prompt_cache::SystemPromptCache,
    /// Tenants' settings, policy and credentials between turns (see its module docs).
    pub tenants: Arc<facio_services::tenant_cache::TenantCache>,
    /// This node's id in session leases.
    pub node: facio_services::domain::NodeId,
    /// The other nodes, in cluster mode (set once, after the HTTP layer joined).
    pub peers: std::sync::OnceLock<Arc<dyn Peers>>,
    /// The node's background tasks (stopped and awaited at shutdown).
    pub background: crate::background::Background,
    /// The node is draining: sessions give themselves up as soon as they are idle.
    pub draining: std::sync::atomic::AtomicBool,
    /// The timers of the pending reviews this node watches.
    pub gates: crate::review_timers::Timers,
    /// Every tenant's MCP servers on this node.
    pub mcp: Arc<facio_services::mcp::McpHub>,
    /// Every tenant's A2A peers, for `call_agent`.
    pub a2a: Arc<facio_services::a2a_client::A2aPeers>,
    /// Every tenant's scheduled jobs.
    pub cron: Arc<facio_services::cron::CronJobs>,
    /// The client outbound channel messages go out with.
    pub http: reqwest::Client,
}

/// Whether `name` is one the MCP hub answers for (not a built-in or HITL tool).
fn from_hub(name: &str) -> bool {
    name.starts_with("mcp_") || name == facio_services::mcp::MANAGE_MCP
}

impl NodeContext {
    /// The tool `name` as `tenant`'s turns see it: a built-in, an MCP server's or
    /// `manage_mcp`.
    pub async fn tool(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Option<Arc<dyn facio_services::tools::Tool>> {
        if let Some(tool) = self.tools.get(name) {
            return Some(tool);
        }
        if name == facio_services::a2a_client::CALL_AGENT {
            return Some(self.a2a.tool(tenant));
        }
        if name == facio_services::cron::CRON_TOOL {
            return Some(self.cron.tool(tenant));
        }
        if name == facio_services::channels::MESSAGE {
            let channels = facio_services::channels::tenant_channels(
                &self.config.channels.webhooks,
                self.store.as_ref(),
                tenant,
            )
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(name, channel, _)| (name, channel))
            .collect();
            return Some(facio_services::channels::message_tool(
                channels,
                tenant,
                self.store.clone(),
                self.http.clone(),
            ));
        }
        if !from_hub(name) {
            return None;
        }
        if let Some(tool) = self.mcp.offered_tool(tenant, name) {
            return Some(tool);
        }
        self.mcp
            .offered(tenant, &self.specs)
            .await
            .tools
            .get(name)
            .cloned()
    }

    /// The risk tier of `tenant`'s tool `name`, as last offered.
    pub fn risk(&self, tenant: &TenantId, name: &str) -> Option<facio_services::tools::RiskTier> {
        if name == facio_services::a2a_client::CALL_AGENT
            || name == facio_services::channels::MESSAGE
            || name == facio_services::cron::CRON_TOOL
        {
            return Some(facio_services::tools::RiskTier::SystemEffect);
        }
        self.tools.risk(name).or_else(|| {
            from_hub(name)
                .then(|| self.mcp.offered_risk(tenant, name))
                .flatten()
        })
    }
}

/// The node's long-lived actors, as the rest of the node reaches them (the node
/// supervisor swaps them in place as it restarts them).
pub(crate) trait NodeHandles: Send + Sync {
    /// The tool pool.
    fn tools(&self) -> Option<ActorRef<ToolPoolMsg>>;
    /// Continues `run` on its session's actor (its review closed).
    fn resume(
        &self,
        tenant: TenantId,
        key: SessionKey,
        run: RunId,
        origin: Origin,
    ) -> Result<(), String>;
}

/// Something that changed, for callers waiting on runs and reviews.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A run reached a new status (awaiting review, completed, failed, ...).
    RunChanged {
        tenant: TenantId,
        run_id: facio_services::domain::RunId,
    },
    /// A review was decided, expired or cancelled.
    ReviewClosed {
        tenant: TenantId,
        review_id: ReviewId,
    },
}

/// The node other than this one that holds the session's live lease, when that node
/// is alive: the session's work is carried out there. `None` on a single node, when
/// nobody holds the session, and when its holder is gone (its lease runs out and the
/// session is taken over here or by a sweep).
pub(crate) async fn holder_elsewhere(
    deps: &NodeContext,
    tenant: &TenantId,
    key: &SessionKey,
) -> Option<(NodeId, Arc<dyn Peers>)> {
    let peers = deps.peers.get()?;
    let lease = match deps.store.get_lease(tenant, key).await {
        Ok(lease) => lease?,
        Err(e) => {
            tracing::warn!(session = %key, error = %e, "cannot read the session's lease");
            return None;
        }
    };
    let live = lease.expires_at > chrono::Utc::now();
    (live && lease.owner != deps.node && peers.is_live(&lease.owner))
        .then(|| (lease.owner, peers.clone()))
}
