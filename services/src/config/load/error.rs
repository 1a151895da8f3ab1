//! Why a config cannot be used. Every message is one line that names the file (or the
//! environment variable), the key path and the reason, so an operator can fix it
//! without reading code.

use std::path::{Path, PathBuf};

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file named explicitly (argument or `FACIO_CONFIG`) does not exist.
    #[error("config {}: file not found", .path.display())]
    NotFound { path: PathBuf },
    /// The file exists but cannot be read.
    #[error("config {}: cannot read: {reason}", .path.display())]
    Read { path: PathBuf, reason: String },
    /// The file is not valid JSON (comments and trailing commas allowed).
    #[error("config {}:{line}:{column}: {reason}", .path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    /// A value is unknown, of the wrong type, or out of range.
    #[error("config {}: {key}: {reason}", source_name(.file.as_deref()))]
    Invalid {
        file: Option<PathBuf>,
        key: String,
        reason: String,
    },
    /// A `${VAR}` without a default names a variable that is not set.
    #[error(
        "config {}: {key}: environment variable {var} is not set (write ${{{var}:-default}} to allow that)",
        source_name(.file.as_deref())
    )]
    MissingVariable {
        file: Option<PathBuf>,
        key: String,
        var: String,
    },
    /// A `FACIO_*__*` environment override names an unknown key or sets a bad value.
    #[error("config override {var}: {key}: {reason}")]
    Override {
        var: String,
        key: String,
        reason: String,
    },
}

fn source_name(file: Option<&Path>) -> String {
    match file {
        Some(path) => path.display().to_string(),
        None => "(defaults and environment, no file)".to_owned(),
    }
}

/// Folds a multi-line library message (regex errors draw a caret diagram) into the
/// one line our errors promise, preferring the line that states the problem.
pub(super) fn one_line(message: &str) -> String {
    if let Some(line) = message
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
    {
        return line.trim().to_owned();
    }
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
