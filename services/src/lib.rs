//! Facio's domain and its adapters: configuration, domain types, model providers,
//! tools, context assembly and the store. No actors live here (they are in
//! `facio-actors`); nothing here depends on another Facio crate.

pub mod a2a_client;
pub mod auth;
pub mod channels;
pub mod cluster;
pub mod config;
pub mod context;
pub mod cron;
pub mod domain;
pub mod logs;
pub mod mcp;
pub mod memory;
pub mod placet;
pub mod policy;
pub mod prompt_cache;
pub mod providers;
pub mod review;
pub mod scripts;
pub mod skills;
pub mod store;
pub mod telemetry;
pub mod tenant_cache;
pub mod tools;
pub mod vault;
