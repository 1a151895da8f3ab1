//! Operator rules: `{action: allow|deny, tool, params?}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Deny,
}

/// One rule. `tool` is a name or a glob (`mcp_*`); each `params` entry is a glob on
/// that argument's text (string values) or an exact value (anything else); an
/// `exec` rule's `command` is matched word by word (see the module docs of
/// `policy`). `network: true` on an allow rule lets the `exec` commands it covers
/// reach the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    pub action: RuleAction,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// Allow rules only: the `exec` commands this rule covers may reach the network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
}

/// Why a rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("tool: must not be empty")]
    EmptyTool,
    #[error("{field}: invalid glob {pattern:?}: {reason}")]
    BadGlob {
        field: String,
        pattern: String,
        reason: String,
    },
    #[error("network: only an allow rule can grant network access; remove it from this deny rule")]
    NetworkOnDeny,
}

impl PolicyRule {
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.tool.trim().is_empty() {
            return Err(PolicyError::EmptyTool);
        }
        check_glob("tool", &self.tool)?;
        for (name, value) in self.params.iter().flatten() {
            if let Value::String(pattern) = value {
                check_glob(&format!("params.{name}"), pattern)?;
                if name == "command" {
                    // Commands are matched word by word: each word must be a glob too.
                    for word in pattern.split_whitespace() {
                        check_glob(&format!("params.{name}"), word)?;
                    }
                }
            }
        }
        if self.network && self.action == RuleAction::Deny {
            return Err(PolicyError::NetworkOnDeny);
        }
        Ok(())
    }
}

fn check_glob(field: &str, pattern: &str) -> Result<(), PolicyError> {
    globset::Glob::new(pattern)
        .map(|_| ())
        .map_err(|e| PolicyError::BadGlob {
            field: field.to_owned(),
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })
}
