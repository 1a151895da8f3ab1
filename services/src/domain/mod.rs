//! Domain types shared by every layer: typed ids, chat messages, usage.

mod ids;
mod message;

pub use ids::{IdError, RunId, SessionKey, TenantId, ToolCallId};
pub use message::{ChatMessage, Role, ToolCall, Usage};
