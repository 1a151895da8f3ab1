//! placeholder
/// OpenAI-compatible chat completions client.
#[derive(Debug)]
pub struct OpenAiProvider;
