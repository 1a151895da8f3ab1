//! Facio's load generator: sessions × turns at a concurrency against a running
//! gateway, measuring throughput, latency, runtime overhead, the server's memory and its store
//! commits and reads per turn; and two scenarios: sessions waiting on human reviews
//! (`facio-waiting`) and a node's failover (`facio-failover`).

pub mod api;
pub mod failover;
pub mod memory;
pub mod plan;
pub mod stats;
pub mod store;
pub mod waiting;
