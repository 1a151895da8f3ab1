//! `facio onboard` (placeholder).

use std::path::{Path, PathBuf};

/// What onboarding wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardReport {
    pub written: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
}

/// Why onboarding failed.
#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Writes a commented starter config at `config_path` and a workspace at `workspace`,
/// keeping files that exist unless `force`.
pub fn onboard(
    config_path: &Path,
    workspace: &Path,
    force: bool,
) -> Result<OnboardReport, OnboardError> {
    let _ = (config_path, workspace, force);
    Ok(OnboardReport {
        written: vec![],
        kept: vec![],
    })
}
