//! The provider clients against an in-process server speaking each wire.

mod anthropic;
mod openai;
mod resolve;
mod server;

use serde_json::json;
use tokio::sync::mpsc;

use super::{ChatRequest, ChatResponse, Provider, ProviderError, StreamDelta};
use crate::domain::{ChatMessage, ToolCall};
use crate::tools::{RiskTier, ToolSpec, ToolSpecs};

/// A conversation that exercises every message shape: system prompt, a turn with two
/// tool calls, both results, and a follow-up question.
fn conversation() -> ChatRequest {
    let read = ToolCall {
        id: "call_a".into(),
        name: "read_file".into(),
        arguments: r#"{"path":"README.md"}"#.into(),
    };
    let list = ToolCall {
        id: "call_b".into(),
        name: "list_dir".into(),
        arguments: r#"{"path":"."}"#.into(),
    };
    ChatRequest {
        model: "test-model".into(),
        messages: vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("What is in this repo?"),
            ChatMessage::assistant_tool_calls(
                Some("Let me look.".into()),
                vec![read.clone(), list.clone()],
            ),
            ChatMessage::tool_result(&read, "# Facio"),
            ChatMessage::tool_result(&list, "README.md\nsrc/"),
            ChatMessage::user("Summarise."),
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file.".into(),
            parameters: json!({ "type": "object", "properties": { "path": { "type": "string" } } }),
            risk: RiskTier::ReadOnly,
        }]
        .into(),
        max_tokens: Some(256),
        temperature: Some(0.2),
    }
}

fn question() -> ChatRequest {
    ChatRequest {
        model: "test-model".into(),
        messages: vec![ChatMessage::user("Hi")],
        tools: ToolSpecs::default(),
        max_tokens: None,
        temperature: None,
    }
}

/// Streams `request` and returns the outcome with every text delta the watcher saw.
async fn chat_streaming(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Result<ChatResponse, ProviderError>, Vec<String>) {
    let (sender, mut receiver) = mpsc::channel(256);
    let outcome = provider.chat(request, Some(sender)).await;
    let mut deltas = Vec::new();
    while let Some(StreamDelta::Text(text)) = receiver.recv().await {
        deltas.push(text);
    }
    (outcome, deltas)
}
