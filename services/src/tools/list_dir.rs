//! `list_dir` (placeholder).
