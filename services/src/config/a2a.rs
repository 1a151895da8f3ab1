//! `a2a`: how this node presents itself to other agents (the A2A agent card).

use serde::{Deserialize, Serialize};

/// `a2a` area: the agent card's name, description and skills. The endpoint is
/// `POST /a2a`; callers present `api.a2aToken` or a tenant's JWT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct A2aConfig {
    /// The agent's name on its card.
    pub name: String,
    /// What the agent does, for the agents that call it.
    pub description: String,
    /// The agent's version on its card (default: Facio's).
    pub version: Option<String>,
    /// What it can be asked to do.
    pub skills: Vec<A2aSkill>,
    /// The public base URL callers reach this node at (default: the request's own
    /// origin, `X-Forwarded-Proto` deciding https).
    pub url: Option<String>,
    /// Who runs the agent.
    pub provider: Option<A2aProvider>,
}

impl Default for A2aConfig {
    fn default() -> Self {
        Self {
            name: "Facio".to_owned(),
            description: "An agent that runs tools under a policy, with humans deciding the \
                          risky steps"
                .to_owned(),
            version: None,
            skills: Vec::new(),
            url: None,
            provider: None,
        }
    }
}

/// One skill on the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct A2aSkill {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub examples: Vec<String>,
}

/// `a2a.provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct A2aProvider {
    pub organization: String,
    pub url: String,
}
