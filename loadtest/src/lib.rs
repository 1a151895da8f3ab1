//! Facio's load generator: sessions × turns at a concurrency against a running
//! gateway, measuring throughput, latency, runtime overhead and the server's memory.

pub mod memory;
pub mod plan;
pub mod stats;
