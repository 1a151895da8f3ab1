//! Facio's outside: the HTTP gateway (OpenAI-compatible and health routes), the
//! embedding SDK ([`Facio`]) and the pieces of the `facio` CLI. The runtime itself is
//! `facio-actors`; the domain and adapters are `facio-services`.

mod bootstrap;
mod cluster;
mod connections;
mod error;
mod prometheus;
mod routes;
mod sdk;
mod server;
mod telegram;
pub mod telemetry;

pub use bootstrap::{BootError, Node, NodeOptions, open_configured_store, open_vault};
pub use error::ApiError;
pub use sdk::{Facio, FacioError, RunOptions, RunResult};
pub use server::{ServeError, serve};

pub use facio_actors::{HookDecision, ToolUse, TurnHooks};
