//! `facio onboard`: a commented starter `config.json` that loads as is, and a
//! workspace with the files that shape the agent. Files that exist are kept unless
//! forced; every write is atomic, so an interrupted onboard leaves no half file.

mod starter;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What onboarding wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardReport {
    /// Files written (created, or replaced because of `force`), in write order.
    pub written: Vec<PathBuf>,
    /// Files that existed and were left untouched.
    pub kept: Vec<PathBuf>,
    /// The management token written into a new config (none when the config was kept).
    pub management_token: Option<String>,
}

/// Why onboarding failed.
#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Writes a commented starter config at `config_path` and a workspace at `workspace`,
/// keeping files that exist unless `force`. The config points at `workspace` (relative
/// to the config's directory when it lies below it).
pub fn onboard(
    config_path: &Path,
    workspace: &Path,
    force: bool,
) -> Result<OnboardReport, OnboardError> {
    let config_dir = config_path.parent().unwrap_or(Path::new(""));
    let token = format!("fm_{}", hex::encode(rand::random::<[u8; 24]>()));
    let mut files = vec![(
        config_path.to_path_buf(),
        starter::config_json(&workspace_setting(config_dir, workspace), &token),
    )];
    files.extend(
        starter::WORKSPACE_FILES
            .iter()
            .map(|(name, text)| (workspace.join(name), (*text).to_owned())),
    );

    let mut report = OnboardReport {
        written: Vec::new(),
        kept: Vec::new(),
        management_token: None,
    };
    for (path, text) in files {
        if !force && path.exists() {
            report.kept.push(path);
            continue;
        }
        // Owner-only for the config: it holds the management token.
        let mode = if path == config_path { 0o600 } else { 0o644 };
        write_atomic(&path, text.as_bytes(), mode).map_err(|err| OnboardError::Write {
            path: path.clone(),
            reason: err.to_string(),
        })?;
        if path == config_path {
            report.management_token = Some(token.clone());
        }
        report.written.push(path);
    }
    Ok(report)
}

/// How the config names the workspace: relative when it sits below the config (so
/// the two can move together), else as given.
fn workspace_setting(config_dir: &Path, workspace: &Path) -> String {
    let relative = workspace
        .strip_prefix(config_dir)
        .ok()
        .filter(|rest| !config_dir.as_os_str().is_empty() && !rest.as_os_str().is_empty());
    relative.unwrap_or(workspace).display().to_string()
}

/// Distinguishes temp files of concurrent writes from one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a temp file beside `path`, then renames it over `path`, so readers
/// see the old file or the new one, never a part.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create_new(true),
            mode,
        )
        .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        // Best effort: the temp file may not exist if opening failed.
        let _ = std::fs::remove_file(&temp);
    }
    result
}
