//! `web_fetch` (placeholder).
