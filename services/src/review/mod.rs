//! Human review: what Facio asks a person (approval, selection, form, text input,
//! freeform), in the exact shapes Placet and Facio's own inbox render; how an answer
//! is validated; how password answers are kept away from the agent; and the four HITL
//! tools (`ask_approval`, `ask_selection`, `ask_form`, `ask_text_input`) that open a
//! review. Pure data and checks: no I/O, no gate lifecycle (that is the gate actor's).

mod args;
mod display;
mod form;
mod id;
mod outcome;
mod payload;
mod request;
mod response;
pub mod secrets;
mod specs;
mod validate;

#[cfg(test)]
mod tests;

pub use args::{ReviewArgsError, request_from_tool_call};
pub use display::{displayable, fence_for};
pub use id::{ReviewId, ReviewIdError};
pub use outcome::{ReviewOutcome, tool_result_for};
pub use payload::{
    ApprovalOption, ApprovalPayload, Bounds, ButtonStyle, FieldType, FormField, FormPayload,
    FreeformPayload, ReviewPayload, ReviewType, SelectOption, SelectionItem, SelectionMode,
    SelectionPayload, TextInputPayload,
};
pub use request::{DEFAULT_REVIEW_TIMEOUT_S, MAX_REVIEW_TIMEOUT_S, Review, ReviewRequest};
pub use response::{
    ApprovalResponse, ResponseError, ReviewResponse, SelectionResponse, TextInputResponse,
    ValidatedResponse,
};
pub use secrets::{SecretString, credential_key, credential_placeholder, split_secrets};
pub use specs::{HitlTool, hitl_tool_specs};
pub use validate::validate_response;
