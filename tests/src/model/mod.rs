//! The scripted model: a real HTTP server speaking the OpenAI chat-completions wire
//! (JSON and SSE), answering from a script of replies and recording every request, so
//! tests exercise the real provider client and can assert what the model saw.

mod reply;
mod server;
mod wire;

#[cfg(test)]
mod tests;

pub use reply::Reply;
pub use server::{RecordedRequest, ScriptedModel};
