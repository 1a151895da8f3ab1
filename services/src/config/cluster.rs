//! `cluster`: this node's name and how long it holds a session.

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
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            lease_ttl_s: 10,
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
