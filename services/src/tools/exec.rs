//! `exec` (placeholder).
