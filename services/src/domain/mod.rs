//! Domain types shared by every layer: typed ids, chat messages, usage, tenant settings.

mod ids;
mod message;
mod tenant;

pub use ids::{
    ANY_FORM_PATTERN, CRON_FORM_PATTERN, CronJobId, IdError, NodeId, RunId, SessionKey,
    TENANT_FORM_PATTERN, TenantId, ToolCallId,
};
pub use message::{ChatMessage, Role, ToolCall, Usage};
pub use tenant::{TenantSettings, TenantSettingsPatch};
