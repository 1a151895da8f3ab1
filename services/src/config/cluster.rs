//! `cluster`: this node's name, how long it holds a session, and (in cluster mode)
//! the Redis that nodes meet in and how they reach one another.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::NodeId;

/// `cluster` area. A single node uses the same session leases as a cluster node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's id in session leases. Default: the host name.
    pub node_id: Option<String>,
    /// How long a session lease lasts without renewal, in seconds (default 10). The
    /// node renews its leases every third of it.
    pub lease_ttl_s: u64,
    /// Redis, where the nodes of a cluster register and find each other. Unset: a
    /// single node, no Redis needed.
    pub redis_url: Option<String>,
    /// The base URL other nodes forward this node's sessions to. Default:
    /// `http://<api.host>:<the port bound>`.
    pub advertise_url: Option<String>,
    /// The secret nodes present to one another on forwarded requests (required in
    /// cluster mode; a forwarded request without it is refused).
    pub internal_token: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            lease_ttl_s: 10,
            redis_url: None,
            advertise_url: None,
            internal_token: None,
        }
    }
}

impl ClusterConfig {
    /// The node id in effect: `nodeId` (checked when the config loads), else the
    /// host name, else `facio`.
    pub fn node(&self) -> Result<NodeId, crate::domain::IdError> {
        match &self.node_id {
            Some(id) => NodeId::new(id),
            None => host_name()
                .and_then(|name| NodeId::new(name).ok())
                .map_or_else(|| NodeId::new("facio"), Ok),
        }
    }

    /// The Redis URL when this node is part of a cluster (blank is unset).
    pub fn redis(&self) -> Option<&str> {
        self.redis_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    /// The internal token (blank is unset).
    pub fn token(&self) -> Option<&str> {
        self.internal_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// What is wrong with the cluster settings, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.redis().is_some() && self.token().is_none() {
            return Some(
                "cluster.redisUrl is set but cluster.internalToken is not: nodes of a cluster \
                 must share an internal token"
                    .to_owned(),
            );
        }
        if let Some(url) = self.advertise_url.as_deref()
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Some(format!(
                "cluster.advertiseUrl must be an http:// or https:// URL, not {url:?}"
            ));
        }
        if let Some(url) = self.redis()
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Some(format!(
                "cluster.redisUrl must be a redis:// or rediss:// URL, not {:?}",
                crate::store::redact_url(url)
            ));
        }
        None
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_s.max(1))
    }
}

fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}
