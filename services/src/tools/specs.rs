//! The tool specs a model is offered, built once per node and shared by every request:
//! the list itself, the `tools` JSON of each wire format, and what the list costs in
//! tokens. Nothing of it is rebuilt per turn or per model call; a clone shares it.

use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::ToolSpec;

/// An immutable, shared list of tool specs with its wire JSON computed once.
#[derive(Clone)]
pub struct ToolSpecs(Arc<Built>);

struct Built {
    specs: Vec<ToolSpec>,
    /// The OpenAI chat-completions `tools` array.
    openai: Value,
    /// The Anthropic Messages `tools` array.
    anthropic: Value,
    /// The rough token cost of the list (see [`crate::context::tool_spec_tokens`]).
    tokens: usize,
}

impl ToolSpecs {
    pub fn new(specs: Vec<ToolSpec>) -> Self {
        let openai = specs
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
        let anthropic = specs
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
        let tokens = crate::context::tool_spec_tokens(&specs);
        Self(Arc::new(Built {
            specs,
            openai,
            anthropic,
            tokens,
        }))
    }

    /// The specs as an OpenAI `tools` array.
    pub fn openai_json(&self) -> &Value {
        &self.0.openai
    }

    /// The specs as an Anthropic `tools` array.
    pub fn anthropic_json(&self) -> &Value {
        &self.0.anthropic
    }

    /// What the specs cost in every request, in estimated tokens.
    pub fn tokens(&self) -> usize {
        self.0.tokens
    }
}

impl Default for ToolSpecs {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl From<Vec<ToolSpec>> for ToolSpecs {
    fn from(specs: Vec<ToolSpec>) -> Self {
        Self::new(specs)
    }
}

impl Deref for ToolSpecs {
    type Target = [ToolSpec];

    fn deref(&self) -> &[ToolSpec] {
        &self.0.specs
    }
}

impl std::fmt::Debug for ToolSpecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.specs.iter().map(|s| &s.name))
            .finish()
    }
}

impl Serialize for ToolSpecs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.specs.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{RiskTier, ToolRegistry};

    #[test]
    fn the_wire_json_and_token_cost_match_the_specs_and_clones_share_them() {
        let specs = ToolSpecs::new(ToolRegistry::builtin().specs());
        assert_eq!(
            specs.len(),
            specs.openai_json().as_array().map_or(0, Vec::len)
        );
        let exec = specs.iter().position(|s| s.name == "exec").unwrap();
        assert_eq!(specs.openai_json()[exec]["function"]["name"], "exec");
        assert_eq!(
            specs.anthropic_json()[exec]["input_schema"],
            specs[exec].parameters
        );
        assert_eq!(specs.tokens(), crate::context::tool_spec_tokens(&specs));
        let clone = specs.clone();
        assert!(std::ptr::eq(clone.openai_json(), specs.openai_json()));
        let empty = ToolSpecs::default();
        assert!(empty.is_empty() && empty.tokens() == 0);
        let one = ToolSpecs::from(vec![ToolSpec {
            name: "x".into(),
            description: "d".into(),
            parameters: json!({}),
            risk: RiskTier::ReadOnly,
        }]);
        assert_eq!(one.anthropic_json()[0]["name"], "x");
    }
}
