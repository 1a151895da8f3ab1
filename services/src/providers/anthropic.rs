//! placeholder
/// Anthropic Messages client.
#[derive(Debug)]
pub struct AnthropicProvider;
