//! Facio's runtime: supervised ractor actors per node, session and tool execution,
//! and the turn loop they drive. Actors never await a model or a tool inside
//! `handle`: turns run as tasks that report back by message, so cancellation and new
//! input are always handled promptly. Everything that matters is written to the store
//! before it is acted on, so any actor can be dropped and rebuilt from the store.
//!
//! This crate depends on `facio-services` only; the HTTP surfaces and the CLI live in
//! the `facio` crate.

mod background;
mod context;
mod gate;
mod node;
mod origin;
mod peers;
mod recovery;
mod review_timers;
mod runtime;
mod scheduler;
mod session;
mod tool_pool;
mod turn;

pub use context::Notice;
pub use peers::{Peers, SessionOp, SessionOpResult};
pub use runtime::{ReviewDecision, ReviewError, Runtime, RuntimeDeps, RuntimeError, TurnRequest};
pub use session::ResetError;
pub use turn::{
    BudgetScope, HookDecision, Origin, StopReason, ToolUse, TurnEvent, TurnHooks, TurnSummary,
};
