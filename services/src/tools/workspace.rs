//! Workspace confinement. Paths are resolved component by component, following every
//! symlink on the way (also dangling ones, which a write would follow), so neither
//! `..`, an absolute path, nor a link anywhere in the path can leave the root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::{ToolError, ToolErrorKind};

/// Links followed in one path before it is refused as a loop.
const MAX_LINK_HOPS: usize = 40;

/// Why a path is refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("path {0:?} is outside the workspace")]
    Outside(String),
    #[error("path {0:?} has too many symbolic links (a loop?)")]
    LinkLoop(String),
    #[error("workspace root {0:?} cannot be used: {1}")]
    Root(PathBuf, String),
}

impl From<WorkspaceError> for ToolError {
    fn from(error: WorkspaceError) -> Self {
        let kind = match error {
            WorkspaceError::Outside(_) => ToolErrorKind::OutsideWorkspace,
            WorkspaceError::LinkLoop(_) | WorkspaceError::Root(..) => ToolErrorKind::Io,
        };
        ToolError::new(kind, error.to_string())
            .with_hint("use a path relative to the workspace root, without `..` leaving it")
    }
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

    /// Resolves a user-supplied path (relative to the root, or absolute) to the real
    /// path it names, refusing it when confinement is on and it lies outside the root.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, WorkspaceError> {
        let raw = Path::new(path);
        let joined = if raw.is_absolute() {
            raw.to_path_buf()
        } else {
            self.root.join(raw)
        };
        let resolved =
            follow_links(&joined).ok_or_else(|| WorkspaceError::LinkLoop(path.into()))?;
        if self.restrict && !resolved.starts_with(&self.root) {
            return Err(WorkspaceError::Outside(path.to_owned()));
        }
        Ok(resolved)
    }

    /// `path` as the model should see it: relative to the root when inside it.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

/// Walks `path` from the filesystem root, applying `.`/`..` and replacing every
/// symlink met (existing target or not) by its target. `None` on a link loop.
fn follow_links(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    let mut pending: VecDeque<OsString> = components(path);
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match part.to_str() {
            Some("/") => out = PathBuf::from("/"),
            Some(".") => {}
            Some("..") => {
                out.pop();
            }
            _ => {
                let candidate = out.join(&part);
                let is_link = std::fs::symlink_metadata(&candidate)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if !is_link {
                    out = candidate;
                    continue;
                }
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return None;
                }
                let Ok(target) = std::fs::read_link(&candidate) else {
                    out = candidate;
                    continue;
                };
                for (i, c) in components(&target).into_iter().enumerate() {
                    pending.insert(i, c);
                }
            }
        }
    }
    Some(out)
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .map(|c| match c {
            Component::RootDir | Component::Prefix(_) => OsString::from("/"),
            Component::CurDir => OsString::from("."),
            Component::ParentDir => OsString::from(".."),
            Component::Normal(name) => name.to_os_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir, Workspace) {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "s3cret").unwrap();
        let ws = Workspace::new(root.path(), true).unwrap();
        (root, outside, ws)
    }

    #[test]
    fn paths_inside_resolve_and_escapes_are_refused() {
        let (root, outside, ws) = setup();
        let root_real = ws.root().to_path_buf();
        assert_eq!(
            ws.resolve("a/b/../c.txt").unwrap(),
            root_real.join("a/c.txt")
        );
        assert_eq!(
            ws.resolve(root_real.join("x").to_str().unwrap()).unwrap(),
            root_real.join("x")
        );
        for escape in ["../x", "a/../../x", "/etc/passwd"] {
            let err = ws.resolve(escape).unwrap_err().to_string();
            assert!(err.contains("outside"), "{escape}: {err}");
        }
        symlink(
            outside.path().join("secret.txt"),
            root.path().join("file-link"),
        )
        .unwrap();
        symlink(outside.path(), root.path().join("dir-link")).unwrap();
        symlink(outside.path().join("not-yet"), root.path().join("dangling")).unwrap();
        symlink(root.path().join("loop"), root.path().join("loop")).unwrap();
        assert!(ws.resolve("file-link").is_err());
        assert!(ws.resolve("dir-link/secret.txt").is_err());
        assert!(
            ws.resolve("dangling").is_err(),
            "a write through a dangling link would escape"
        );
        assert!(matches!(
            ws.resolve("loop"),
            Err(WorkspaceError::LinkLoop(_))
        ));
        symlink("a", root.path().join("inner-link")).unwrap();
        assert_eq!(ws.resolve("inner-link/f").unwrap(), root_real.join("a/f"));
    }

    #[test]
    fn unrestricted_workspaces_allow_outside_paths() {
        let root = tempfile::tempdir().unwrap();
        let ws = Workspace::new(root.path(), false).unwrap();
        assert_eq!(ws.resolve("/etc").unwrap(), PathBuf::from("/etc"));
        assert_eq!(ws.display(&ws.root().join("a/b")), "a/b");
    }
}
