//! The MCP client: each tenant's MCP servers (those of `tools.mcpServers` and the
//! tenant's own from `/api/v1/mcp`), connected lazily with the tenant's credentials
//! when one of its turns first needs tools, and offered to the model as
//! `mcp_<server>_<tool>`. One connection per tenant and server: tenants never share a
//! server process or session.

mod manage;
mod server;
mod tool;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{McpServerConfig, McpTransport, mcp_server_name_problem};
use crate::domain::TenantId;
use crate::store::{
    Applied, AuditEventKind, Change, IntegrationKind, NewAuditEvent, Store, StoreError,
};
use crate::tools::{Tool, ToolSpec, ToolSpecs};

pub use manage::{MANAGE_MCP, manage_mcp_spec};
pub use server::{McpPhase, McpSource};
pub use tool::model_name;

use server::{SecretsFn, Server};

/// How long a tenant's stored servers are trusted before they are read again (a
/// change made on another node or by the CLI is seen within this).
const REFRESH: Duration = Duration::from_secs(5);
/// Longest a turn waits for a server it has never connected to before it is offered
/// the tools there are.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(10);

/// What a change to a tenant's servers failed on.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no MCP server named {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Only the node's operator may add servers the node starts as processes.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who changes a tenant's servers.
#[derive(Debug, Clone)]
pub struct McpActor {
    /// As the audit log records it.
    pub name: String,
    /// The node's operator (management token): may add `stdio` servers, which run a
    /// command on the node. Tenants and the agent may add `streamableHttp` ones.
    pub operator: bool,
    /// The run that asked, when the agent did (`manage_mcp`).
    pub run: Option<String>,
    /// More for the audit event (the surface, the request's id).
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// One server as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpServerView {
    pub name: String,
    pub source: McpSource,
    /// The definition; `env` and `headers` values other than `${credentials.KEY}`
    /// references are shown as `[hidden]`.
    pub definition: McpServerConfig,
    pub status: McpPhase,
    /// The tools offered to the model, by the names it calls them.
    pub tools: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The protocol version negotiated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The server's name and version, as it gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// Connections made so far (more than one: it reconnected).
    pub connects: u64,
}

/// The tools a tenant's turn is offered: the node's own plus its MCP servers'.
#[derive(Clone)]
pub struct Offered {
    pub specs: ToolSpecs,
    /// The MCP tools and `manage_mcp`, by the name the model calls them.
    pub tools: Arc<BTreeMap<String, Arc<dyn Tool>>>,
}

struct TenantServers {
    checked: Instant,
    servers: BTreeMap<String, Arc<Server>>,
}

struct Built {
    generation: u64,
    base: usize,
    offered: Offered,
}

/// Every tenant's MCP connections on this node.
pub struct McpHub {
    config: BTreeMap<String, McpServerConfig>,
    store: Arc<dyn Store>,
    secrets: SecretsFn,
    tenants: tokio::sync::Mutex<HashMap<TenantId, TenantServers>>,
    built: Mutex<HashMap<TenantId, Built>>,
    generation: Arc<AtomicU64>,
    me: Weak<McpHub>,
}

impl McpHub {
    /// `secrets` opens a tenant's credentials when one of its servers connects.
    pub fn new<F>(
        config: BTreeMap<String, McpServerConfig>,
        store: Arc<dyn Store>,
        secrets: F,
    ) -> Arc<McpHub>
    where
        F: Fn(
                TenantId,
            )
                -> futures::future::BoxFuture<'static, Result<Arc<crate::vault::Secrets>, String>>
            + Send
            + Sync
            + 'static,
    {
        Arc::new_cyclic(|me| McpHub {
            config,
            store,
            secrets: Arc::new(secrets),
            tenants: tokio::sync::Mutex::default(),
            built: Mutex::default(),
            generation: Arc::new(AtomicU64::new(1)),
            me: me.clone(),
        })
    }

    /// The tenant's servers, read again from the store when [`REFRESH`] old, each
    /// changed definition reconnected; plus which were started by this call.
    async fn servers(&self, tenant: &TenantId) -> (Vec<Arc<Server>>, Vec<Arc<Server>>) {
        let listed = |tenants: &HashMap<TenantId, TenantServers>| -> Vec<Arc<Server>> {
            tenants
                .get(tenant)
                .map(|t| t.servers.values().cloned().collect())
                .unwrap_or_default()
        };
        // The common case, every model call: one lock, no store read.
        {
            let tenants = self.tenants.lock().await;
            if tenants
                .get(tenant)
                .is_some_and(|t| t.checked.elapsed() < REFRESH)
            {
                return (listed(&tenants), Vec::new());
            }
        }
        // Read outside the lock: other tenants' turns do not wait on this read.
        let stored = match self
            .store
            .integrations(tenant, IntegrationKind::McpServer)
            .await
        {
            Ok(stored) => Some(stored),
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "could not read the tenant's MCP servers");
                None
            }
        };
        let mut tenants = self.tenants.lock().await;
        let entry = tenants
            .entry(tenant.clone())
            .or_insert_with(|| TenantServers {
                checked: Instant::now(),
                servers: BTreeMap::new(),
            });
        let started = match stored {
            Some(stored) => self.reconcile(tenant, entry, stored),
            None => Vec::new(),
        };
        entry.checked = Instant::now();
        (listed(&tenants), started)
    }

    /// Brings `entry` to the config's and the stored definitions: a removed or changed
    /// server is stopped, a new or changed one started (returned).
    fn reconcile(
        &self,
        tenant: &TenantId,
        entry: &mut TenantServers,
        stored: Vec<(String, serde_json::Value)>,
    ) -> Vec<Arc<Server>> {
        let mut wanted: BTreeMap<String, (McpServerConfig, McpSource)> = self
            .config
            .iter()
            .map(|(name, def)| (name.clone(), (def.clone(), McpSource::Config)))
            .collect();
        for (name, definition) in stored {
            match serde_json::from_value::<McpServerConfig>(definition) {
                Ok(def) => {
                    wanted.entry(name).or_insert((def, McpSource::Tenant));
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, server = %name, error = %e, "a stored MCP server does not parse; skipped");
                }
            }
        }
        entry.servers.retain(|name, server| {
            let keep = wanted
                .get(name)
                .is_some_and(|(def, source)| *def == server.def && *source == server.source);
            if !keep {
                server.stop();
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            keep
        });
        let mut started = Vec::new();
        for (name, (def, source)) in wanted {
            if entry.servers.contains_key(&name) {
                continue;
            }
            let server = Server::start(
                tenant.clone(),
                name.clone(),
                def,
                source,
                self.generation.clone(),
                self.secrets.clone(),
            );
            self.generation.fetch_add(1, Ordering::AcqRel);
            started.push(server.clone());
            entry.servers.insert(name, server);
        }
        started
    }

    /// The tools a turn of `tenant` is offered: `base` and its MCP servers' tools. A
    /// server connecting for the first time is waited for a little; one that is down
    /// keeps its last tool list (its calls say it is unavailable).
    pub async fn offered(&self, tenant: &TenantId, base: &ToolSpecs) -> Offered {
        let (servers, _) = self.servers(tenant).await;
        // A server never connected yet (just added, or this tenant's first turn) is
        // waited for; one that failed or is reconnecting is not.
        let first: Vec<&Arc<Server>> = servers
            .iter()
            .filter(|s| {
                let state = s.state();
                state.phase == McpPhase::Connecting && state.connects == 0 && state.error.is_none()
            })
            .collect();
        if !first.is_empty() {
            futures::future::join_all(first.iter().map(|s| s.settled(FIRST_CONNECT_WAIT))).await;
        }
        let generation = self.generation.load(Ordering::Acquire);
        let base_id = base.as_ptr() as usize;
        if let Ok(built) = self.built.lock()
            && let Some(b) = built.get(tenant)
            && b.generation == generation
            && b.base == base_id
        {
            return b.offered.clone();
        }
        let mut specs: Vec<ToolSpec> = base.to_vec();
        let mut tools: BTreeMap<String, Arc<dyn Tool>> = BTreeMap::new();
        if let Some(hub) = self.me.upgrade() {
            tools.insert(
                MANAGE_MCP.to_owned(),
                Arc::new(manage::ManageMcp::new(hub, tenant.clone())),
            );
        }
        for server in &servers {
            let state = server.state();
            if state.phase == McpPhase::Disabled {
                continue;
            }
            for remote in state.tools.iter() {
                let tool = tool::McpTool::new(server.clone(), remote);
                let spec = tool.spec();
                if tools.contains_key(&spec.name) || specs.iter().any(|s| s.name == spec.name) {
                    continue;
                }
                specs.push(spec.clone());
                tools.insert(spec.name, Arc::new(tool));
            }
        }
        let offered = Offered {
            specs: specs.into(),
            tools: Arc::new(tools),
        };
        if let Ok(mut built) = self.built.lock() {
            built.insert(
                tenant.clone(),
                Built {
                    generation,
                    base: base_id,
                    offered: offered.clone(),
                },
            );
        }
        offered
    }

    /// The tenant's MCP tool (or `manage_mcp`) named `name`, as last offered.
    pub fn offered_tool(&self, tenant: &TenantId, name: &str) -> Option<Arc<dyn Tool>> {
        let built = self.built.lock().ok()?;
        built.get(tenant)?.offered.tools.get(name).cloned()
    }

    /// The risk tier of the tenant's MCP tool `name`, as last offered.
    pub fn offered_risk(&self, tenant: &TenantId, name: &str) -> Option<crate::tools::RiskTier> {
        let built = self.built.lock().ok()?;
        built
            .get(tenant)?
            .offered
            .specs
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.risk)
    }

    /// The tenant's servers with their state.
    pub async fn list(&self, tenant: &TenantId) -> Vec<McpServerView> {
        let (servers, _) = self.servers(tenant).await;
        servers.iter().map(|s| view(s)).collect()
    }

    /// One of the tenant's servers.
    pub async fn get(&self, tenant: &TenantId, name: &str) -> Result<McpServerView, McpError> {
        let (servers, started) = self.servers(tenant).await;
        let server = servers
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| McpError::NotFound(name.to_owned()))?;
        if started.iter().any(|s| Arc::ptr_eq(s, &server)) {
            server.settled(FIRST_CONNECT_WAIT).await;
        }
        Ok(view(&server))
    }

    /// Checks a definition a tenant (or its agent) asks for.
    pub fn check(
        &self,
        name: &str,
        def: &McpServerConfig,
        actor: &McpActor,
    ) -> Result<(), McpError> {
        if let Some(problem) = mcp_server_name_problem(name) {
            return Err(McpError::Invalid(problem));
        }
        if let Some((field, problem)) = def.problem() {
            return Err(McpError::Invalid(format!("{field}: {problem}")));
        }
        if self.config.contains_key(name) {
            return Err(McpError::Conflict(format!(
                "{name} is defined in the node's config (tools.mcpServers.{name}); choose another name"
            )));
        }
        if def.transport == McpTransport::Stdio && !actor.operator {
            return Err(McpError::Forbidden(
                "a stdio server runs a command on the node: only the operator (the management \
                 token) may add one; tenants add streamableHttp servers"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Adds (or with `replace`, replaces) the tenant's server `name`.
    pub async fn put(
        &self,
        tenant: &TenantId,
        name: &str,
        def: McpServerConfig,
        replace: bool,
        actor: &McpActor,
    ) -> Result<McpServerView, McpError> {
        self.check(name, &def, actor)?;
        let existed = self.stored(tenant, name).await?.is_some();
        let definition = serde_json::to_value(&def)
            .map_err(|e| McpError::Invalid(format!("the definition does not serialize: {e}")))?;
        let action = if existed { "replaced" } else { "added" };
        let change = Change::PutIntegration {
            kind: IntegrationKind::McpServer,
            name: name.to_owned(),
            definition,
            replace,
        };
        let event = event(tenant, name, action, &def, actor);
        match self.store.apply_change(tenant, change, vec![event]).await {
            Ok(_) => {}
            Err(StoreError::Conflict(m)) => return Err(McpError::Conflict(m)),
            Err(e) => return Err(e.into()),
        }
        self.changed(tenant).await;
        self.current(tenant, name).await
    }

    /// The server as it is now, without waiting for a connection being made (its
    /// state says when it is ready).
    async fn current(&self, tenant: &TenantId, name: &str) -> Result<McpServerView, McpError> {
        let (servers, _) = self.servers(tenant).await;
        servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| view(s))
            .ok_or_else(|| McpError::NotFound(name.to_owned()))
    }

    /// Changes some fields of the tenant's server `name` (a JSON merge patch of its
    /// definition: `null` removes a field).
    pub async fn patch(
        &self,
        tenant: &TenantId,
        name: &str,
        patch: &serde_json::Map<String, serde_json::Value>,
        actor: &McpActor,
    ) -> Result<McpServerView, McpError> {
        let Some(def) = self.stored(tenant, name).await? else {
            return Err(self.not_tenants(name));
        };
        let mut merged = serde_json::to_value(&def)
            .map_err(|e| McpError::Invalid(format!("the definition does not serialize: {e}")))?;
        if let Some(fields) = merged.as_object_mut() {
            for (key, value) in patch {
                if value.is_null() {
                    fields.remove(key);
                } else {
                    fields.insert(key.clone(), value.clone());
                }
            }
        }
        let def: McpServerConfig = serde_json::from_value(merged)
            .map_err(|e| McpError::Invalid(format!("the patched definition: {e}")))?;
        self.put(tenant, name, def, true, actor).await
    }

    /// Removes the tenant's server `name` (its connection is closed).
    pub async fn remove(
        &self,
        tenant: &TenantId,
        name: &str,
        actor: &McpActor,
    ) -> Result<(), McpError> {
        let Some(def) = self.stored(tenant, name).await? else {
            return Err(self.not_tenants(name));
        };
        let change = Change::DeleteIntegration {
            kind: IntegrationKind::McpServer,
            name: name.to_owned(),
        };
        let event = event(tenant, name, "removed", &def, actor);
        if self.store.apply_change(tenant, change, vec![event]).await? == Applied::Missing {
            return Err(McpError::NotFound(name.to_owned()));
        }
        self.changed(tenant).await;
        Ok(())
    }

    /// Switches the tenant's server `name` on or off.
    pub async fn set_enabled(
        &self,
        tenant: &TenantId,
        name: &str,
        enabled: bool,
        actor: &McpActor,
    ) -> Result<McpServerView, McpError> {
        let Some(mut def) = self.stored(tenant, name).await? else {
            return Err(self.not_tenants(name));
        };
        if def.enabled != enabled {
            def.enabled = enabled;
            let definition =
                serde_json::to_value(&def).map_err(|e| McpError::Invalid(e.to_string()))?;
            let change = Change::PutIntegration {
                kind: IntegrationKind::McpServer,
                name: name.to_owned(),
                definition,
                replace: true,
            };
            let action = if enabled { "enabled" } else { "disabled" };
            let event = event(tenant, name, action, &def, actor);
            self.store.apply_change(tenant, change, vec![event]).await?;
            self.changed(tenant).await;
        }
        self.current(tenant, name).await
    }

    /// Drops the connection to `name` and connects again.
    pub async fn restart(
        &self,
        tenant: &TenantId,
        name: &str,
        actor: &McpActor,
    ) -> Result<McpServerView, McpError> {
        let (servers, _) = self.servers(tenant).await;
        let server = servers
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| McpError::NotFound(name.to_owned()))?;
        let event = event(tenant, name, "restarted", &server.def, actor);
        self.store
            .apply_change(tenant, Change::Record, vec![event])
            .await?;
        server.reconnect(FIRST_CONNECT_WAIT).await;
        Ok(view(&server))
    }

    /// Forgets what this node knows of the tenant's servers: the next use reads them
    /// again (and reconnects what changed).
    pub async fn changed(&self, tenant: &TenantId) {
        if let Some(entry) = self.tenants.lock().await.get_mut(tenant) {
            entry.checked = Instant::now() - REFRESH - Duration::from_millis(1);
        }
    }

    /// Closes every connection (the node stops).
    pub async fn shutdown(&self) {
        for entry in self.tenants.lock().await.values() {
            for server in entry.servers.values() {
                server.stop();
            }
        }
    }

    async fn stored(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<McpServerConfig>, McpError> {
        let stored = self
            .store
            .integrations(tenant, IntegrationKind::McpServer)
            .await?;
        Ok(stored
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, d)| serde_json::from_value(d).ok()))
    }

    fn not_tenants(&self, name: &str) -> McpError {
        if self.config.contains_key(name) {
            McpError::Conflict(format!(
                "{name} is defined in the node's config (tools.mcpServers.{name}); change it there"
            ))
        } else {
            McpError::NotFound(name.to_owned())
        }
    }
}

fn view(server: &Server) -> McpServerView {
    let state = server.state();
    McpServerView {
        name: server.name.clone(),
        source: server.source,
        definition: server::shown(&server.def),
        status: state.phase,
        tools: state
            .tools
            .iter()
            .map(|t| model_name(&server.name, &t.name))
            .collect(),
        error: state.error,
        protocol_version: state.protocol,
        server_info: state.server_name,
        connected_at: state.connected_at,
        retry_at: state.retry_at,
        connects: state.connects,
    }
}

fn event(
    tenant: &TenantId,
    name: &str,
    action: &str,
    def: &McpServerConfig,
    actor: &McpActor,
) -> (TenantId, NewAuditEvent) {
    let mut data = serde_json::json!({
        "server": name,
        "action": action,
        "type": def.transport.as_str(),
        "riskTier": def.risk_tier.as_str(),
        "enabled": def.enabled,
    });
    if let Some(url) = &def.url {
        data["url"] = serde_json::json!(url);
    }
    if let Some(command) = &def.command {
        data["command"] = serde_json::json!(command);
    }
    if let Some(run) = &actor.run {
        data["runId"] = serde_json::json!(run);
    }
    for (key, value) in &actor.context {
        data[key.as_str()] = value.clone();
    }
    (
        tenant.clone(),
        NewAuditEvent {
            kind: AuditEventKind::McpServerChanged,
            session_key: None,
            run_id: None,
            actor: actor.name.clone(),
            data,
        },
    )
}
