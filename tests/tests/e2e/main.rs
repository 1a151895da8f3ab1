//! Facio end to end, through the doors a user has: the SDK, the `facio` CLI and the
//! HTTP gateway, against a scripted model speaking the real OpenAI wire.
//! One test binary on purpose: linking is the slow part of a build.

mod support;

mod a2a;
mod a2a_peers;
mod audit;
mod channels;
mod cli;
mod cluster;
mod cron;
mod durability;
mod gate;
mod gate_property;
mod gate_sandbox;
mod gate_secrets;
mod gate_shell;
mod gateway;
mod hitl;
mod hostile;
mod inbox;
mod interop;
mod manage;
mod matrix;
mod mcp;
mod observe;
mod openapi;
mod postgres;
mod provider_errors;
mod record;
mod sdk;
mod secrets;
mod settings;
mod signin;
mod telegram;
mod tenants;
mod terminal;
mod usage;
mod workspace;
