//! `write_file` (placeholder).
