//! `pricing`: what a model's tokens cost, to estimate the cost of each run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::Usage;

/// `pricing`: price per million tokens, keyed by model name as the provider reports
/// it (`"gpt-4o-mini"`, `"anthropic/claude-sonnet-4"`). Models not listed cost 0.
pub type PricingConfig = BTreeMap<String, ModelPrice>;

/// One model's prices, in a currency unit of your choosing (USD in the examples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ModelPrice {
    /// Price of one million prompt tokens.
    pub input_per_million: f64,
    /// Price of one million completion tokens.
    pub output_per_million: f64,
}

/// The estimated cost of `usage` on `model`, in millionths of the currency unit.
pub fn cost_micros(pricing: &PricingConfig, model: &str, usage: &Usage) -> u64 {
    let Some(price) = pricing.get(model) else {
        return 0;
    };
    // Per-million prices times tokens, then scaled to micro-units: the two cancel.
    let micros = price.input_per_million * usage.prompt_tokens as f64
        + price.output_per_million * usage.completion_tokens as f64;
    if micros.is_finite() && micros > 0.0 {
        micros.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_come_from_the_price_table() {
        let mut pricing = PricingConfig::new();
        pricing.insert(
            "m".into(),
            ModelPrice {
                input_per_million: 3.0,
                output_per_million: 15.0,
            },
        );
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 200,
            total_tokens: 1200,
        };
        // 1000 × $3/M + 200 × $15/M = $0.003 + $0.003 = $0.006
        assert_eq!(cost_micros(&pricing, "m", &usage), 6000);
        assert_eq!(cost_micros(&pricing, "other", &usage), 0);
    }
}
