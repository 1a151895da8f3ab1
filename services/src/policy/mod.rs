//! The tool-call policy: before any tool call runs, the runtime (not the model)
//! decides run, deny or ask a human, from the tool's risk tier and the operator's
//! rules. Deny wins over allow; a call no rule covers asks a human once (one review
//! per call). Rules and flags are the Placet `/api/v1/policy` shapes.
//!
//! Arguments are matched in a normalized form (trimmed, whitespace runs collapsed),
//! so `git  status` is `git status`. For `exec` commands, a deny rule matches when it
//! matches any segment of a compound command (split on `;`, `&&`, `||`, `|`, newlines
//! and the contents of `$(...)` and backticks), and an allow rule applies only when
//! every segment is allowed: `git status; curl evil` is not covered by an allow on
//! `git status*`.

mod matching;
mod rules;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::tools::RiskTier;

pub use rules::{PolicyError, PolicyRule, RuleAction};

/// `enabled` and `skipCron`, as Placet sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicySettings {
    /// Master switch: when false, calls no deny rule covers run without a review.
    pub enabled: bool,
    /// Calls from scheduled (cron) turns run without a review.
    pub skip_cron: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            skip_cron: false,
        }
    }
}

/// A tenant's rules and flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Policy {
    pub rules: Vec<PolicyRule>,
    #[serde(flatten)]
    pub settings: PolicySettings,
    /// Seconds a review opened by this policy waits for a human before it times out
    /// and the call is denied. Default 24 h, at most 36 h.
    pub review_timeout_s: Option<u64>,
}

/// Where the turn making a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallOrigin {
    Interactive,
    Api,
    Sdk,
    Cron,
    A2a,
}

/// The call being decided.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub tool: &'a str,
    pub risk: RiskTier,
    pub args: &'a serde_json::Value,
    pub origin: CallOrigin,
}

/// What happens to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Run {
        reason: String,
    },
    Deny {
        reason: String,
        rule: Option<PolicyRule>,
    },
    Ask {
        reason: String,
    },
}

impl Policy {
    /// The tenant's policy: the stored document when an operator saved one, else the
    /// initial policy from config. A stored document that does not parse is an error,
    /// never a silent fall back to a possibly more permissive initial policy.
    pub fn effective(
        stored: Option<serde_json::Value>,
        initial: &Policy,
    ) -> Result<Policy, serde_json::Error> {
        match stored {
            Some(doc) => serde_json::from_value(doc),
            None => Ok(initial.clone()),
        }
    }

    /// Adds a rule unless an identical one exists. Returns whether it was added.
    pub fn add(&mut self, rule: PolicyRule) -> Result<bool, PolicyError> {
        rule.validate()?;
        if self.rules.contains(&rule) {
            return Ok(false);
        }
        self.rules.push(rule);
        Ok(true)
    }

    /// Removes the rule equal to `rule`. Returns whether one was removed.
    pub fn remove(&mut self, rule: &PolicyRule) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r != rule);
        before != self.rules.len()
    }

    pub fn decide(&self, call: &CallContext<'_>) -> Decision {
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.action == RuleAction::Deny && matching::deny_matches(r, call))
        {
            return Decision::Deny {
                reason: format!("a deny rule for {} covers this call", rule.tool),
                rule: Some(rule.clone()),
            };
        }
        if matching::allowed(&self.rules, call) {
            return Decision::Run {
                reason: "an allow rule covers this call".into(),
            };
        }
        if !self.settings.enabled {
            return Decision::Run {
                reason: "approval gates are disabled".into(),
            };
        }
        if self.settings.skip_cron && call.origin == CallOrigin::Cron {
            return Decision::Run {
                reason: "scheduled turns skip approval gates".into(),
            };
        }
        match call.risk {
            RiskTier::ReadOnly => Decision::Run {
                reason: format!("{} only reads", call.tool),
            },
            RiskTier::WorkspaceWrite => Decision::Run {
                reason: format!("{} writes inside the workspace", call.tool),
            },
            RiskTier::SystemEffect => Decision::Ask {
                reason: format!(
                    "{} affects the world outside the workspace and no rule allows it",
                    call.tool
                ),
            },
            RiskTier::Infrastructure => Decision::Ask {
                reason: format!(
                    "{} changes the runtime's infrastructure and no rule allows it",
                    call.tool
                ),
            },
        }
    }
}
