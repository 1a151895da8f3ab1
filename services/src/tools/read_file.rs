//! `read_file` (placeholder).
