//! `glob` (placeholder).
