//! Reading and writing workspace text files the way every file tool needs: clear
//! errors for directories, binaries and huge files; atomic writes.

use std::io::Write;
use std::path::Path;

use super::{ToolError, ToolErrorKind};

/// Largest file a tool reads whole.
pub(crate) const MAX_TEXT_BYTES: u64 = 10 * 1024 * 1024;

pub(crate) fn io_error(path: &str, e: &std::io::Error) -> ToolError {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            ToolError::new(ToolErrorKind::NotFound, format!("{path} does not exist"))
                .with_hint("list_dir or glob shows which files exist")
        }
        _ => ToolError::new(ToolErrorKind::Io, format!("{path}: {e}")),
    }
}

/// Reads a UTF-8 text file, refusing directories, binaries and files over the cap.
pub(crate) async fn read_text(real: &Path, shown: &str) -> Result<String, ToolError> {
    let meta = tokio::fs::metadata(real)
        .await
        .map_err(|e| io_error(shown, &e))?;
    if meta.is_dir() {
        return Err(ToolError::new(
            ToolErrorKind::InvalidArguments,
            format!("{shown} is a directory"),
        )
        .with_hint("use list_dir to see a directory"));
    }
    if meta.len() > MAX_TEXT_BYTES {
        return Err(ToolError::new(
            ToolErrorKind::TooLarge,
            format!(
                "{shown} is {} bytes; the limit is {MAX_TEXT_BYTES}",
                meta.len()
            ),
        )
        .with_hint("use grep to find the part you need"));
    }
    let bytes = tokio::fs::read(real)
        .await
        .map_err(|e| io_error(shown, &e))?;
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Err(ToolError::new(
            ToolErrorKind::InvalidArguments,
            format!("{shown} is a binary file"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        ToolError::new(
            ToolErrorKind::InvalidArguments,
            format!("{shown} is not UTF-8 text"),
        )
    })
}

/// Writes via a temp file in the same directory and a rename, so a reader never sees
/// half a file and a crash leaves the old content.
pub async fn atomic_write(real: &Path, shown: &str, content: &[u8]) -> Result<(), ToolError> {
    let parent = real
        .parent()
        .ok_or_else(|| {
            ToolError::new(
                ToolErrorKind::InvalidArguments,
                format!("{shown} has no parent directory"),
            )
        })?
        .to_path_buf();
    let target = real.to_path_buf();
    let content = content.to_vec();
    let shown = shown.to_owned();
    tokio::task::spawn_blocking(move || -> Result<(), ToolError> {
        std::fs::create_dir_all(&parent).map_err(|e| io_error(&shown, &e))?;
        if target.is_dir() {
            return Err(ToolError::new(
                ToolErrorKind::InvalidArguments,
                format!("{shown} is a directory"),
            ));
        }
        let mut temp =
            tempfile::NamedTempFile::new_in(&parent).map_err(|e| io_error(&shown, &e))?;
        temp.write_all(&content).map_err(|e| io_error(&shown, &e))?;
        if let Ok(meta) = std::fs::metadata(&target) {
            let _ = temp.as_file().set_permissions(meta.permissions());
        }
        temp.persist(&target)
            .map_err(|e| io_error(&shown, &e.error))?;
        Ok(())
    })
    .await
    .map_err(|e| ToolError::new(ToolErrorKind::Failed, format!("write task failed: {e}")))?
}
