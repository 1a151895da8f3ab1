//! `patch_file` (placeholder).
