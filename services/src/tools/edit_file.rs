//! `edit_file` (placeholder).
