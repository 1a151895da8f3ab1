//! Workspace confinement (placeholder; replaced by the real implementation).

use std::path::{Path, PathBuf};

/// Why a path is refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("path {0:?} is outside the workspace")]
    Outside(String),
    #[error("workspace root {0:?} cannot be used: {1}")]
    Root(PathBuf, String),
}

/// The directory a session's tools work in.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    restrict: bool,
}

impl Workspace {
    /// Opens (creating if needed) the workspace at `root`.
    pub fn new(root: impl Into<PathBuf>, restrict: bool) -> Result<Self, WorkspaceError> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| WorkspaceError::Root(root.clone(), e.to_string()))?;
        let root = root
            .canonicalize()
            .map_err(|e| WorkspaceError::Root(root.clone(), e.to_string()))?;
        Ok(Self { root, restrict })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn restricted(&self) -> bool {
        self.restrict
    }

    /// Resolves a user-supplied path against the root, refusing escapes.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, WorkspaceError> {
        Err(WorkspaceError::Outside(path.to_owned()))
    }
}
