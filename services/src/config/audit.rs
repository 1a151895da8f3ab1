//! `audit`: the append-only audit log.

use serde::{Deserialize, Serialize};

/// `audit` area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Characters of tool arguments and results kept in an audit event. Default 4000.
    pub max_field_chars: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            max_field_chars: 4000,
        }
    }
}
