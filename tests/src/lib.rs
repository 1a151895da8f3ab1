//! Test support for Facio's end-to-end tests: the scripted model server (a real
//! OpenAI-wire HTTP server driven by a per-test script), child-process control for
//! the `facio` binary, and building workspace binaries.

pub mod binary;
pub mod identity;
pub mod model;
pub mod placet;
pub mod process;
pub mod telegram;
