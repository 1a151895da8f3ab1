//! Context assembly (placeholder).
