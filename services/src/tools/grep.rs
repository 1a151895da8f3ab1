//! `grep` (placeholder).
