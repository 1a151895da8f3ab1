//! Cluster mode at the HTTP edge: joining the membership, finding the node that holds
//! a session, forwarding a request to it (the caller cannot tell), and the internal
//! calls nodes make to one another with `cluster.internalToken`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tracing::Instrument;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::Response;
use facio_actors::{Peers, Runtime, SessionOp, SessionOpResult};
use facio_services::cluster::{
    ClusterError, Handled, InboxEntry, InboxHandler, Membership, NodeInfo,
};
use facio_services::domain::{NodeId, SessionKey, TenantId};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// The header a forwarded request carries the internal token in.
pub(crate) const INTERNAL_TOKEN: &str = "x-facio-internal-token";
/// The header naming the node that ran a request.
pub(crate) const NODE_HEADER: &str = "x-facio-node";

/// This node's place in its cluster.
pub(crate) struct Cluster {
    pub membership: Arc<Membership>,
    token: Arc<str>,
    client: reqwest::Client,
}

/// Where a request for a session goes: the node, its address, and how long a caller
/// should wait before trying again should that node not answer.
pub(crate) struct Target {
    pub node: NodeId,
    pub url: String,
    pub retry_after: u64,
}

/// How an internal call names a session and what to do with it.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OpRequest {
    pub tenant: String,
    pub session_key: String,
    pub op: SessionOp,
}

impl Cluster {
    /// Joins the cluster at `redis_url` as the node `runtime` runs, reachable at
    /// `advertise_url`, until `stop`.
    pub async fn join(
        runtime: &Arc<Runtime>,
        redis_url: &str,
        token: &str,
        advertise_url: String,
        stop: CancellationToken,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let sessions = Arc::new(AtomicUsize::new(0));
        // The registration says how many sessions the node holds; counted here
        // because counting asks the actors.
        tokio::spawn({
            let (runtime, sessions, stop) = (runtime.clone(), sessions.clone(), stop.clone());
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        _ = every.tick() => {}
                    }
                    if let Ok(n) = runtime.active_sessions().await {
                        sessions.store(n, Ordering::Relaxed);
                    }
                }
            }
        });
        let me = NodeInfo {
            id: runtime.node_id().clone(),
            advertise_url: advertise_url.trim_end_matches('/').to_owned(),
            started_at: chrono::Utc::now(),
            sessions: 0,
            draining: false,
        };
        let count = sessions.clone();
        let inbox_stop = stop.clone();
        let membership = Membership::join(
            redis_url,
            me,
            runtime.config().cluster.lease_ttl(),
            Arc::new(move || count.load(Ordering::Relaxed)),
            stop,
        )
        .await?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClusterError::Forwarding(e.to_string()))?;
        let cluster = Arc::new(Cluster {
            membership,
            token: token.into(),
            client,
        });
        runtime.set_peers(cluster.clone());
        // Runs until `stop`; nothing waits for it.
        drop(
            cluster
                .membership
                .read_inbox(Arc::new(Notices(Arc::downgrade(runtime))), inbox_stop),
        );
        Ok(cluster)
    }

    /// Whether `presented` is this cluster's internal token (compared in constant
    /// time).
    pub fn token_matches(&self, presented: &[u8]) -> bool {
        facio_services::auth::same_secret(self.token.as_bytes(), presented)
    }

    /// The node a request for this session must go to, when it is not this one:
    /// the live holder of its lease, else (nobody holds it) the node rendezvous
    /// hashing prefers. `Ok(None)`: run it here. A 503 with `Retry-After` while the
    /// session is held by a node that is gone (its lease has not run out yet).
    pub async fn owner_elsewhere(
        &self,
        runtime: &Runtime,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<Option<Target>, ApiError> {
        let me = runtime.node_id();
        let holder = match runtime.store().get_lease(tenant, key).await {
            Ok(lease) => lease.filter(|l| l.expires_at > chrono::Utc::now()),
            Err(e) => {
                tracing::warn!(session = %key, error = %e, "cannot read the session's lease; running it here");
                return Ok(None);
            }
        };
        let target = match holder {
            Some(lease) if &lease.owner == me => return Ok(None),
            Some(lease) => {
                let left = (lease.expires_at - chrono::Utc::now()).num_seconds().max(0);
                let retry_after = u64::try_from(left).unwrap_or(0) + 1;
                // A holder no longer registered (dead, or frozen: a forward to it
                // could hang) or never seen here: its lease runs out within the TTL
                // and the session is taken over then; until then, say so. While
                // Redis is unreachable every known node counts as registered.
                return match self.membership.url_of(&lease.owner) {
                    Some(url) if self.membership.is_live(&lease.owner) => Ok(Some(Target {
                        node: lease.owner,
                        url,
                        retry_after,
                    })),
                    // Gone from a membership this node can read: the session is
                    // taken over here (its actor takes the lease from the gone node).
                    _ if self.membership.knows_gone(&lease.owner) => Ok(None),
                    _ => Err(held_by_gone(&lease.owner, retry_after)),
                };
            }
            None => self.membership.preferred(tenant, key),
        };
        if &target == me {
            return Ok(None);
        }
        // A preferred node not seen yet: run it here (the lease decides).
        let retry_after = self.membership.ttl_secs();
        Ok(self.membership.url_of(&target).map(|url| Target {
            node: target,
            url,
            retry_after,
        }))
    }

    /// How long a request waits for its session to settle on a node while it moves
    /// (a lease's length and a little).
    pub fn patience(&self) -> Duration {
        Duration::from_secs(self.membership.ttl_secs() + 2)
    }

    /// Where a request for a session runs. `Ok(None)`: here. Otherwise the answer of
    /// the node that ran it, streamed back as it comes (the caller cannot tell). While
    /// a session moves off a node that is shutting down (which answers
    /// `shutting_down` having stored nothing, or no longer listens), the request goes
    /// where the session is now, within a lease's length.
    #[allow(clippy::too_many_arguments)]
    pub async fn route(
        &self,
        runtime: &Runtime,
        tenant: &TenantId,
        key: &SessionKey,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: axum::body::Bytes,
    ) -> Result<Option<Response>, ApiError> {
        let patience = self.patience();
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Past draining this node runs nothing: once its sessions are given
            // back, the request goes where its session is now.
            if runtime.closing() {
                runtime.wait_closed(patience).await;
            }
            let Some(target) = self.owner_elsewhere(runtime, tenant, key).await? else {
                if runtime.closing() && tokio::time::Instant::now() < deadline {
                    continue;
                }
                return Ok(None);
            };
            let again = tokio::time::Instant::now() + Duration::from_millis(100) < deadline;
            // A node frozen mid-request (SIGSTOP, a stalled VM) accepts connections
            // and never answers: once its registration has lapsed, stop waiting.
            let sent = tokio::select! {
                sent = self.send(&target, method, uri, headers, body.clone()) => sent,
                () = until_gone(self.membership.clone(), self.client.clone(), target.node.clone(), target.url.clone()) => {
                    tracing::warn!(owner = %target.node, "the session's node stopped answering and left the cluster");
                    return Err(held_by_gone(&target.node, target.retry_after));
                }
            };
            match sent {
                Ok(sent) if sent.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                    let status = sent.status();
                    let answer_headers = sent.headers().clone();
                    let bytes = sent.bytes().await.unwrap_or_default();
                    let shutting_down = serde_json::from_slice::<serde_json::Value>(&bytes)
                        .is_ok_and(|v| v["error"]["code"] == crate::error::SHUTTING_DOWN);
                    if shutting_down && again {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    return passed_on(status, &answer_headers, Body::from(bytes)).map(Some);
                }
                Ok(sent) => {
                    let (status, answer_headers) = (sent.status(), sent.headers().clone());
                    let events = answer_headers
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|t| t.starts_with("text/event-stream"));
                    let body = if events {
                        // A stream already flowing from a node that then freezes
                        // would wait forever: once that node has left the cluster,
                        // the stream ends with an error event saying so.
                        let gone = until_gone(
                            self.membership.clone(),
                            self.client.clone(),
                            target.node.clone(),
                            target.url.clone(),
                        );
                        Body::from_stream(watched(
                            sent.bytes_stream(),
                            Box::pin(gone),
                            held_by_gone(&target.node, target.retry_after),
                        ))
                    } else {
                        Body::from_stream(sent.bytes_stream())
                    };
                    return passed_on(status, &answer_headers, body).map(Some);
                }
                // Nothing reached a draining node: it may have just closed its
                // listener, its sessions given back. (A dead node's sessions wait for
                // their leases: the caller is told when to try again.)
                Err(e) if e.is_connect() && again && self.membership.is_draining(&target.node) => {
                    tracing::debug!(owner = %target.node, "the session's node does not listen; looking again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    self.membership.refresh_now().await;
                }
                Err(e) => {
                    tracing::warn!(owner = %target.node, error = %without_url(&e), "cannot forward to the session's node");
                    return Err(held_by_gone(&target.node, target.retry_after));
                }
            }
        }
    }

    /// Sends the request to `target` with the internal token.
    async fn send(
        &self,
        target: &Target,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: axum::body::Bytes,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", target.url));
        for (name, value) in headers {
            // The body may be re-encoded: reqwest sets its length.
            if !hop_by_hop(name) && name != INTERNAL_TOKEN && name != "content-length" {
                request = request.header(name, value);
            }
        }
        // The owner's spans continue this request's trace.
        request
            .headers(facio_services::telemetry::trace_headers())
            .header(INTERNAL_TOKEN, self.token.as_ref())
            .body(body)
            .send()
            .await
    }
}

/// Returns once `node` is gone: its registration lapsed and it does not answer a
/// health probe within a second (never while Redis cannot be reached: every known
/// node then counts as alive). A draining node leaves the membership on purpose while
/// it still answers what it was sent (it keeps listening until every node has seen it
/// go), so it answers the probe; a frozen one does not.
async fn until_gone(
    membership: Arc<Membership>,
    client: reqwest::Client,
    node: NodeId,
    url: String,
) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        every.tick().await;
        if membership.is_live(&node) {
            continue;
        }
        let probe = client
            .get(format!("{url}/healthz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if probe.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `stream` passed on until `gone` completes; then one last server-sent event with
/// `error`'s body, and the end.
fn watched(
    stream: impl futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send + 'static,
    gone: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    error: ApiError,
) -> impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Send {
    use futures::StreamExt;
    let last = format!("data: {}\n\n", error.body());
    futures::stream::unfold(
        (Box::pin(stream), Some(gone), Some(last)),
        |(mut stream, gone, last)| async move {
            let mut gone = gone?;
            tokio::select! {
                chunk = stream.next() => match chunk {
                    Some(Ok(bytes)) => Some((Ok(bytes), (stream, Some(gone), last))),
                    Some(Err(e)) => Some((Err(std::io::Error::other(e.without_url())), (stream, None, None))),
                    None => None,
                },
                () = &mut gone => {
                    tracing::warn!("the node streaming this answer stopped answering and left the cluster");
                    last.map(|event| (Ok(axum::body::Bytes::from(event)), (stream, None, None)))
                }
            }
        },
    )
}

/// Another node's answer as this node's.
fn passed_on(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for (name, value) in headers {
        if !hop_by_hop(name) && name != "content-length" {
            out = out.header(name, value);
        }
    }
    out.body(body)
        .map_err(|e| ApiError::internal(format!("cannot pass the forwarded answer on: {e}")))
}

/// Hands this node's inbox entries to its runtime.
struct Notices(std::sync::Weak<Runtime>);

#[async_trait]
impl InboxHandler for Notices {
    async fn handle(&self, entry: InboxEntry) -> Handled {
        let Some(runtime) = self.0.upgrade() else {
            return Handled::Later;
        };
        let span =
            tracing::info_span!("inbox", otel.name = "inbox receive", otel.kind = "consumer");
        facio_services::telemetry::continue_trace(&span, entry.traceparent.as_deref());
        let taken = runtime
            .take_notice(entry.tenant, entry.session_key)
            .instrument(span)
            .await;
        if taken { Handled::Done } else { Handled::Later }
    }
}

/// 503: the session is held by `owner`, which cannot be reached now; `Retry-After`
/// says when its lease will have run out.
fn held_by_gone(owner: &NodeId, retry_after: u64) -> ApiError {
    let mut error = ApiError::unavailable(format!(
        "the session is held by node {owner}, which cannot be reached; retry in {retry_after} s: \
         its lease runs out within cluster.leaseTtlS and another node takes the session over"
    ));
    error.retry_after = Some(retry_after);
    error
}

/// A reqwest error's text without the URL (it names an internal address).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the node");
    }
    text
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "host"
    )
}

#[async_trait]
impl Peers for Cluster {
    fn is_live(&self, node: &NodeId) -> bool {
        self.membership.is_live(node)
    }

    fn knows_gone(&self, node: &NodeId) -> bool {
        self.membership.knows_gone(node)
    }

    fn preferred(&self, tenant: &TenantId, key: &SessionKey) -> NodeId {
        self.membership.preferred(tenant, key)
    }

    fn generation(&self) -> u64 {
        self.membership.generation()
    }

    async fn notify(
        &self,
        owner: &NodeId,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<(), String> {
        let entry = InboxEntry {
            traceparent: facio_services::telemetry::traceparent(),
            tenant: tenant.clone(),
            session_key: key.clone(),
        };
        self.membership
            .send(owner, &entry)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn ask(
        &self,
        owner: &NodeId,
        tenant: &TenantId,
        key: &SessionKey,
        op: SessionOp,
    ) -> Result<SessionOpResult, String> {
        let url = self
            .membership
            .url_of(owner)
            .ok_or_else(|| format!("node {owner} is not known"))?;
        let body = OpRequest {
            tenant: tenant.as_str().to_owned(),
            session_key: key.as_str().to_owned(),
            op,
        };
        let answer = self
            .client
            .post(format!("{url}/internal/v1/sessions/op"))
            .headers(facio_services::telemetry::trace_headers())
            .header(INTERNAL_TOKEN, self.token.as_ref())
            .timeout(Duration::from_secs(30))
            .json(&body)
            .send()
            .await
            .map_err(|e| without_url(&e))?;
        if !answer.status().is_success() {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            return Err(format!("node {owner} answered {status}: {text}"));
        }
        answer.json().await.map_err(|e| without_url(&e))
    }
}

/// Marks a request another node forwarded here with the internal token: it runs here
/// and is never passed on again.
#[derive(Clone, Copy)]
pub(crate) struct Forwarded;

/// What a handler needs to pass its request on to another node: whether it was
/// forwarded here already, its full URI (outside any nesting) and its headers.
pub(crate) struct Onward {
    pub forwarded: bool,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Onward {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
        Ok(Onward {
            forwarded: parts.extensions.get::<Forwarded>().is_some(),
            uri,
            headers: parts.headers.clone(),
        })
    }
}
