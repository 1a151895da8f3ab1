//! The other nodes of a cluster, as the runtime sees them: who is alive, who a
//! session would go to, and how to reach the node that holds a session. The HTTP
//! layer implements it (membership in Redis, calls over `cluster.advertiseUrl`); a
//! single node has none, and everything is local.

use async_trait::async_trait;
use facio_services::domain::{NodeId, SessionKey, TenantId};

/// What another node is asked to do with a session it holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SessionOp {
    /// Look at the session's stored work now: a review of it was decided, a turn was
    /// queued for it.
    Poke,
    /// Stop the running turn and the queued ones (the answer says whether anything
    /// was stopped).
    Stop,
    /// Delete the session's history, runs and reviews if it is idle, with the audit
    /// event that records it (written in the same transaction).
    Reset(Option<facio_services::store::NewAuditEvent>),
}

/// What the holder answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum SessionOpResult {
    Done {
        changed: bool,
    },
    /// Reset refused: the session is busy.
    Busy,
}

/// The cluster around this node.
#[async_trait]
pub trait Peers: Send + Sync {
    /// Whether `node` is registered and alive.
    fn is_live(&self, node: &NodeId) -> bool;
    /// Whether `node` is known to be gone: the membership could be read and `node` is
    /// not registered in it (false whenever that cannot be told).
    fn knows_gone(&self, node: &NodeId) -> bool;
    /// The live node that should take a session nobody holds.
    fn preferred(&self, tenant: &TenantId, key: &SessionKey) -> NodeId;
    /// A number that changes whenever the live nodes change: work divided by
    /// [`Peers::preferred`] is looked at again when it moved.
    fn generation(&self) -> u64;
    /// Tells `owner`, which holds the session's lease, to look at the session's
    /// stored work (through its inbox; it reads the work from the store).
    async fn notify(
        &self,
        owner: &NodeId,
        tenant: &TenantId,
        key: &SessionKey,
    ) -> Result<(), String>;
    /// Asks `owner`, which holds the session's lease, to carry out `op`.
    async fn ask(
        &self,
        owner: &NodeId,
        tenant: &TenantId,
        key: &SessionKey,
        op: SessionOp,
    ) -> Result<SessionOpResult, String>;
}
