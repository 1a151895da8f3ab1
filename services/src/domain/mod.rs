//! Domain types shared by every layer: typed ids, chat messages, usage, tenant settings.

mod ids;
mod message;
mod tenant;

pub use ids::{IdError, NodeId, RunId, SessionKey, TenantId, ToolCallId};
pub use message::{ChatMessage, Role, ToolCall, Usage};
pub use tenant::{TenantSettings, TenantSettingsPatch};
