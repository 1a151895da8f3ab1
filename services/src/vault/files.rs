//! The files the runtime wrote with resolved credentials: one index per tenant,
//! `<data dir>/tenants/<tenant>/credential-files.json`, outside every workspace so no
//! tool the model drives can change it. It maps a workspace-relative path to the
//! keys whose values the runtime wrote there. Entries whose file no longer holds any
//! of those values are dropped when the index is next listed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use serde::Serialize;

/// One serialised read-modify-write of any index at a time, in this process: turns of
/// one tenant run side by side and each holds its own `Secrets`.
static INDEX_LOCK: LazyLock<Mutex<()>> = LazyLock::new(Mutex::default);

/// A workspace file that holds credential values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialFile {
    /// Relative to the workspace root (absolute when it lies outside it).
    pub path: String,
    /// The credentials whose values it holds, sorted.
    pub keys: Vec<String>,
}

type Index = BTreeMap<String, Vec<String>>;

/// The index file of one tenant.
#[derive(Debug, Clone)]
pub(super) struct CredentialFiles {
    path: PathBuf,
}

impl CredentialFiles {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `file` now holds `keys` (none: it is dropped from the index).
    pub(super) fn record(&self, file: &str, keys: Vec<String>) {
        self.update(|index| {
            if keys.is_empty() {
                index.remove(file).is_some()
            } else {
                index.insert(file.to_owned(), keys.clone()).as_ref() != Some(&keys)
            }
        });
    }

    /// Every indexed file with its keys, after `still_holds` (path, keys → the keys
    /// it still holds) has dropped what is gone.
    pub(super) fn list(
        &self,
        mut still_holds: impl FnMut(&str, &[String]) -> Vec<String>,
    ) -> Vec<CredentialFile> {
        let mut listed = Vec::new();
        self.update(|index| {
            let before = index.clone();
            index.retain(|file, keys| {
                *keys = still_holds(file, keys);
                !keys.is_empty()
            });
            listed = index
                .iter()
                .map(|(path, keys)| CredentialFile {
                    path: path.clone(),
                    keys: keys.clone(),
                })
                .collect();
            *index != before
        });
        listed
    }

    /// Applies `change` to the stored index and saves it when `change` says it changed
    /// something. Failures are logged, never returned: the index only adds knowledge,
    /// and the placeholder view protects every file without it.
    fn update(&self, change: impl FnOnce(&mut Index) -> bool) {
        let _held = INDEX_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut index: Index = match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(index = %self.path.display(), error = %e, "the credential file index is unreadable; starting it afresh");
                Index::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::new(),
            Err(e) => {
                tracing::warn!(index = %self.path.display(), error = %e, "cannot read the credential file index");
                return;
            }
        };
        if !change(&mut index) {
            return;
        }
        if let Err(e) = save(&self.path, &index) {
            tracing::warn!(index = %self.path.display(), error = %e, "cannot save the credential file index");
        }
    }
}

fn save(path: &Path, index: &Index) -> std::io::Result<()> {
    use std::io::Write;
    let parent = path
        .parent()
        .ok_or_else(|| std::io::Error::other("the index has no parent directory"))?;
    std::fs::create_dir_all(parent)?;
    let text = serde_json::to_vec_pretty(index).map_err(std::io::Error::other)?;
    let mut temp = tempfile::NamedTempFile::new_in(parent)?;
    temp.write_all(&text)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
