//! One MCP server of one tenant: a task that connects, lists the server's tools, keeps
//! the list fresh on `notifications/tools/list_changed`, and reconnects with backoff
//! whenever the connection ends. Callers read its current state; they never wait on
//! a connection longer than they choose to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion, ServerNotification, SubscriptionFilter,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, Peer, RoleClient, RunningService,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceError};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{McpServerConfig, McpTransport};
use crate::domain::TenantId;
use crate::vault::Secrets;

/// Longest a connection attempt (start, handshake and first tool list) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// First wait before reconnecting; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Lines of a stdio server's stderr kept for its status.
const STDERR_LINES: usize = 5;

/// Where a server's definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum McpSource {
    /// `tools.mcpServers` in the node's config: every tenant has it.
    Config,
    /// Added for this tenant through `/api/v1/mcp` or `manage_mcp`.
    Tenant,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum McpPhase {
    /// Starting or handshaking (first time or again after a failure).
    Connecting,
    /// Connected; its tools are offered.
    Ready,
    /// The last attempt failed; the next one comes after `retryInS`.
    Failed,
    /// Switched off: not connected, its tools not offered.
    Disabled,
}

/// One tool a server lists.
#[derive(Debug, Clone)]
pub(super) struct RemoteTool {
    pub name: String,
    pub description: String,
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone)]
pub(super) struct State {
    pub phase: McpPhase,
    pub tools: Arc<Vec<RemoteTool>>,
    pub peer: Option<Peer<RoleClient>>,
    pub error: Option<String>,
    pub protocol: Option<String>,
    pub server_name: Option<String>,
    pub connected_at: Option<DateTime<Utc>>,
    pub retry_at: Option<DateTime<Utc>>,
    pub connects: u64,
}

/// Resolves a tenant's credentials when a server connects.
pub(super) type SecretsFn = Arc<
    dyn Fn(TenantId) -> futures::future::BoxFuture<'static, Result<Arc<Secrets>, String>>
        + Send
        + Sync,
>;

pub(super) struct Server {
    pub tenant: TenantId,
    pub name: String,
    pub def: McpServerConfig,
    pub source: McpSource,
    state: Mutex<State>,
    /// Bumped whenever `state` changes, for waiters.
    changed: watch::Sender<u64>,
    /// The hub's generation: bumped when any server's tool list changes.
    generation: Arc<AtomicU64>,
    restart: Notify,
    stop: CancellationToken,
    /// The credential values this server was connected with, hidden from its results.
    secrets: Mutex<Option<Arc<Secrets>>>,
}

impl Server {
    /// The server, its supervising task started unless it is disabled.
    pub fn start(
        tenant: TenantId,
        name: String,
        def: McpServerConfig,
        source: McpSource,
        generation: Arc<AtomicU64>,
        secrets: SecretsFn,
    ) -> Arc<Server> {
        let phase = if def.enabled {
            McpPhase::Connecting
        } else {
            McpPhase::Disabled
        };
        let server = Arc::new(Server {
            tenant,
            name,
            def,
            source,
            state: Mutex::new(State {
                phase,
                tools: Arc::default(),
                peer: None,
                error: None,
                protocol: None,
                server_name: None,
                connected_at: None,
                retry_at: None,
                connects: 0,
            }),
            changed: watch::channel(0).0,
            generation,
            restart: Notify::new(),
            stop: CancellationToken::new(),
            secrets: Mutex::new(None),
        });
        if server.def.enabled {
            tokio::spawn(supervise(server.clone(), secrets));
        }
        server
    }

    pub fn state(&self) -> State {
        match self.state.lock() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let tools_before = {
            let mut state = match self.state.lock() {
                Ok(state) => state,
                Err(poisoned) => poisoned.into_inner(),
            };
            let before = (state.phase, Arc::as_ptr(&state.tools));
            f(&mut state);
            before != (state.phase, Arc::as_ptr(&state.tools))
        };
        if tools_before {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Stops the connection for good (the server was removed or replaced).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Drops the connection and connects again at once.
    pub fn restart(&self) {
        self.restart.notify_one();
    }

    /// Waits until the server is past connecting (ready, failed or disabled), at most
    /// `limit`.
    pub async fn settled(&self, limit: Duration) {
        self.until(limit, |s| s.phase != McpPhase::Connecting).await;
    }

    /// Drops the connection, connects again and waits (at most `limit`) until that
    /// attempt succeeded or failed.
    pub async fn reconnect(&self, limit: Duration) {
        let before = self.state().connects;
        self.restart();
        self.until(limit, |s| {
            s.connects > before || s.phase == McpPhase::Failed || s.phase == McpPhase::Disabled
        })
        .await;
    }

    async fn until(&self, limit: Duration, done: impl Fn(&State) -> bool) {
        let mut changes = self.changed.subscribe();
        let _ = tokio::time::timeout(limit, async {
            while !done(&self.state()) {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// `text` with the credential values this server was given hidden.
    pub fn redact(&self, text: String) -> String {
        let secrets = self.secrets.lock().ok().and_then(|s| s.clone());
        match secrets {
            Some(secrets) if !secrets.is_empty() => secrets.redact(&text),
            _ => text,
        }
    }

    /// Calls the server's tool `tool`. A lost connection is reported (and makes the
    /// server reconnect), never retried: the call may have run.
    pub async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        wait: Duration,
    ) -> Result<CallToolResult, CallError> {
        if self.state().phase == McpPhase::Connecting {
            self.settled(wait).await;
        }
        let state = self.state();
        let Some(peer) = state.peer.filter(|p| !p.is_transport_closed()) else {
            let why = state
                .error
                .unwrap_or_else(|| "it is still connecting".to_owned());
            return Err(CallError::Unavailable(why, state.retry_at));
        };
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = Some(arguments);
        match peer.call_tool(params).await {
            Ok(result) => Ok(result),
            Err(ServiceError::McpError(e)) => Err(CallError::Protocol(e.message.to_string())),
            Err(e) => {
                // The connection is gone (or answers nonsense): start over.
                self.restart();
                Err(CallError::Lost(e.to_string()))
            }
        }
    }
}

/// Why a call did not get a result.
#[derive(Debug)]
pub(super) enum CallError {
    /// Not connected: why, and when the next attempt is.
    Unavailable(String, Option<DateTime<Utc>>),
    /// The server answered with a JSON-RPC error (e.g. an unknown tool).
    Protocol(String),
    /// The connection broke during the call.
    Lost(String),
}

/// Hears the server's notifications.
struct Handler {
    list_changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("facio", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }
}

type Connection = RunningService<RoleClient, Handler>;

/// The supervising loop: connect, serve, reconnect with backoff, until stopped.
async fn supervise(server: Arc<Server>, secrets: SecretsFn) {
    let mut backoff = FIRST_BACKOFF;
    let mut legacy_only = false;
    let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
    loop {
        server.update(|s| {
            s.phase = McpPhase::Connecting;
            s.retry_at = None;
        });
        let list_changed = Arc::new(Notify::new());
        let attempt = tokio::select! {
            () = server.stop.cancelled() => return,
            attempt = tokio::time::timeout(
                CONNECT_TIMEOUT,
                connect(&server, &secrets, &list_changed, &mut legacy_only, &stderr),
            ) => attempt.unwrap_or_else(|_| Err(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
        };
        match attempt {
            Ok((mut connection, tools)) => {
                backoff = FIRST_BACKOFF;
                let info = connection.peer().peer_info();
                let peer = connection.peer().clone();
                server.update(|s| {
                    s.phase = McpPhase::Ready;
                    s.tools = Arc::new(tools);
                    s.peer = Some(peer.clone());
                    s.error = None;
                    s.protocol = info.as_ref().map(|i| i.protocol_version.to_string());
                    s.server_name = info
                        .as_ref()
                        .and_then(|i| i.server_info.as_ref())
                        .map(|i| format!("{} {}", i.name, i.version));
                    s.connected_at = Some(Utc::now());
                    s.connects += 1;
                });
                tracing::info!(tenant = %server.tenant, server = %server.name, "MCP server connected");
                // Since 2026-07-28 a client asks for the notifications it wants.
                let listening = info
                    .as_ref()
                    .is_some_and(|i| !i.protocol_version.has_initialize())
                    .then(|| tokio::spawn(listen(peer.clone(), list_changed.clone())));
                let ended = serve(&server, &mut connection, &list_changed).await;
                if let Some(listening) = listening {
                    listening.abort();
                }
                server.update(|s| s.peer = None);
                let _ = connection.close_with_timeout(Duration::from_secs(2)).await;
                match ended {
                    Ended::Stopped => return,
                    Ended::Restart => continue,
                    Ended::Closed => {
                        let why = last_words(&stderr)
                            .map(|line| format!("the connection ended ({line})"))
                            .unwrap_or_else(|| "the connection ended".to_owned());
                        tracing::warn!(tenant = %server.tenant, server = %server.name, "MCP server: {why}; reconnecting");
                        server.update(|s| s.error = Some(why));
                    }
                }
            }
            Err(why) => {
                let why = match last_words(&stderr) {
                    Some(line) if !why.contains(&line) => format!("{why} (stderr: {line})"),
                    _ => why,
                };
                let why = server.redact(why);
                tracing::warn!(tenant = %server.tenant, server = %server.name, error = %why, "MCP server did not connect");
                let retry_at = Utc::now()
                    + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::zero());
                server.update(|s| {
                    s.phase = McpPhase::Failed;
                    s.peer = None;
                    s.error = Some(why);
                    s.retry_at = Some(retry_at);
                });
                tokio::select! {
                    () = server.stop.cancelled() => return,
                    () = server.restart.notified() => backoff = FIRST_BACKOFF,
                    () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(MAX_BACKOFF),
                }
            }
        }
    }
}

/// Subscribes to `notifications/tools/list_changed` (protocol 2026-07-28) and passes
/// each on to `list_changed`.
async fn listen(peer: Peer<RoleClient>, list_changed: Arc<Notify>) {
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let mut subscription = match peer.listen(filter).await {
        Ok(subscription) => subscription,
        Err(e) => {
            tracing::debug!(error = %e, "the MCP server takes no notification subscription");
            return;
        }
    };
    while let Ok(Some(notification)) = subscription.next().await {
        if matches!(
            notification,
            ServerNotification::ToolListChangedNotification(_)
        ) {
            list_changed.notify_one();
        }
    }
}

enum Ended {
    Stopped,
    Restart,
    Closed,
}

/// Serves a live connection until it ends, refreshing the tool list when told.
async fn serve(server: &Server, connection: &mut Connection, list_changed: &Notify) -> Ended {
    let mut probe = tokio::time::interval(Duration::from_millis(500));
    probe.tick().await;
    loop {
        tokio::select! {
            () = server.stop.cancelled() => return Ended::Stopped,
            () = server.restart.notified() => return Ended::Restart,
            _ = probe.tick() => {
                if connection.is_closed() || connection.peer().is_transport_closed() {
                    return Ended::Closed;
                }
            }
            () = list_changed.notified() => {
                match list_tools(connection.peer(), &server.def).await {
                    Ok(tools) => {
                        tracing::info!(server = %server.name, tools = tools.len(), "MCP server's tools changed");
                        server.update(|s| s.tools = Arc::new(tools));
                    }
                    Err(e) => {
                        tracing::warn!(server = %server.name, error = %e, "MCP server's tools could not be listed again");
                        return Ended::Closed;
                    }
                }
            }
        }
    }
}

/// Starts the transport, negotiates (the current protocol, falling back to
/// 2025-11-25's `initialize` for older servers) and lists the tools.
async fn connect(
    server: &Server,
    secrets: &SecretsFn,
    list_changed: &Arc<Notify>,
    legacy_only: &mut bool,
    stderr: &Arc<Mutex<Vec<String>>>,
) -> Result<(Connection, Vec<RemoteTool>), String> {
    let secrets = secrets(server.tenant.clone()).await?;
    if let Ok(mut slot) = server.secrets.lock() {
        *slot = Some(secrets.clone());
    }
    let def = &server.def;
    let credential_tool = format!("mcp_{}", server.name);
    let resolve = |text: &str| -> Result<String, String> {
        secrets
            .resolve_for(&credential_tool, text)
            .map(|(resolved, _)| resolved)
            .map_err(|e| e.to_string())
    };
    let modes: Vec<ClientLifecycleMode> = if *legacy_only {
        vec![ClientLifecycleMode::Initialize]
    } else {
        vec![
            ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::V_2025_11_25),
            },
            ClientLifecycleMode::Initialize,
        ]
    };
    let mut last = String::new();
    for (i, mode) in modes.into_iter().enumerate() {
        let handler = Handler {
            list_changed: list_changed.clone(),
        };
        let served = match def.transport {
            McpTransport::Stdio => {
                let command = def.command.as_deref().unwrap_or_default();
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(&def.args);
                for (key, value) in &def.env {
                    cmd.env(key, resolve(value).map_err(|e| format!("env {key}: {e}"))?);
                }
                let (transport, err) = TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("could not start {command}: {e}"))?;
                if let Some(err) = err {
                    keep_stderr(server, err, stderr.clone());
                }
                handler.serve_with_lifecycle(transport, mode).await
            }
            McpTransport::StreamableHttp => {
                let url = def.url.as_deref().unwrap_or_default();
                let mut headers = std::collections::HashMap::new();
                for (key, value) in &def.headers {
                    let value = resolve(value).map_err(|e| format!("header {key}: {e}"))?;
                    let name = reqwest::header::HeaderName::from_bytes(key.as_bytes())
                        .map_err(|_| format!("{key:?} is not a header name"))?;
                    let value = reqwest::header::HeaderValue::from_str(&value)
                        .map_err(|_| format!("header {key}'s value is not valid in a header"))?;
                    headers.insert(name, value);
                }
                let mut config = StreamableHttpClientTransportConfig::with_uri(url);
                config.custom_headers = headers;
                config.reinit_on_expired_session = true;
                let transport = StreamableHttpClientTransport::from_config(config);
                handler.serve_with_lifecycle(transport, mode).await
            }
        };
        match served {
            Ok(connection) => {
                if i > 0 {
                    *legacy_only = true;
                }
                let tools = list_tools(connection.peer(), def)
                    .await
                    .map_err(|e| format!("tools/list failed: {e}"))?;
                return Ok((connection, tools));
            }
            Err(e) => last = server.redact(e.to_string()),
        }
    }
    Err(last)
}

async fn list_tools(
    peer: &Peer<RoleClient>,
    def: &McpServerConfig,
) -> Result<Vec<RemoteTool>, ServiceError> {
    let listed = peer.list_all_tools().await?;
    Ok(listed
        .into_iter()
        .filter(|tool| def.offers(&tool.name))
        .map(|tool| RemoteTool {
            name: tool.name.to_string(),
            description: tool
                .description
                .as_deref()
                .or(tool.title.as_deref())
                .unwrap_or_default()
                .to_owned(),
            schema: serde_json::Value::Object((*tool.input_schema).clone()),
        })
        .collect())
}

/// Forwards a stdio server's stderr to the log (redacted) and keeps its last lines.
fn keep_stderr(server: &Server, err: tokio::process::ChildStderr, kept: Arc<Mutex<Vec<String>>>) {
    let (tenant, name) = (server.tenant.clone(), server.name.clone());
    let secrets = server.secrets.lock().ok().and_then(|s| s.clone());
    if let Ok(mut lines) = kept.lock() {
        lines.clear();
    }
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(err).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = match &secrets {
                Some(secrets) => secrets.redact(&line),
                None => line,
            };
            tracing::debug!(tenant = %tenant, server = %name, "MCP server stderr: {line}");
            if let Ok(mut kept) = kept.lock() {
                if kept.len() == STDERR_LINES {
                    kept.remove(0);
                }
                kept.push(line.chars().take(300).collect());
            }
        }
    });
}

fn last_words(stderr: &Mutex<Vec<String>>) -> Option<String> {
    stderr
        .lock()
        .ok()
        .and_then(|lines| lines.iter().rev().find(|l| !l.trim().is_empty()).cloned())
}

/// A server's definition as the API shows it: `env` and `headers` values that are
/// not credential references are hidden (they may be secrets typed in).
pub(super) fn shown(def: &McpServerConfig) -> McpServerConfig {
    let hide = |map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| {
                let v = if crate::vault::placeholder_keys(v).is_empty() {
                    "[hidden]".to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    };
    McpServerConfig {
        env: hide(&def.env),
        headers: hide(&def.headers),
        ..def.clone()
    }
}
