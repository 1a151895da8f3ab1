//! Reading and writing workspace text files the way every file tool needs: clear
//! errors for directories, binaries and huge files; atomic writes; and the
//! placeholder view, in which every credential value is `${credentials.KEY}`, so the
//! model can neither see a stored credential nor edit it into another shape.

use std::io::Write;
use std::path::Path;

use super::{ToolContext, ToolError, ToolErrorKind};
use crate::vault::{PlaceholderView, SecretsError};

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

/// A text file as the file tools see it: every credential value a placeholder.
pub(crate) async fn read_view(
    ctx: &ToolContext,
    real: &Path,
    shown: &str,
) -> Result<PlaceholderView, ToolError> {
    refuse_index(ctx, real, shown)?;
    let text = read_text(real, shown).await?;
    Ok(ctx.secrets.placeholder_view(&text))
}

/// Resolves the placeholders of `edited` (the view `before`, changed by `tool`) and
/// writes the result atomically, noting in the tenant's index which credential values
/// the file now holds. Returns the bytes written.
pub(crate) async fn write_view(
    ctx: &ToolContext,
    tool: &str,
    real: &Path,
    shown: &str,
    before: &PlaceholderView,
    edited: &str,
) -> Result<usize, ToolError> {
    refuse_index(ctx, real, shown)?;
    let (content, _) = ctx
        .secrets
        .resolve_view(tool, before, edited)
        .map_err(credential_error)?;
    atomic_write(real, shown, content.as_bytes()).await?;
    ctx.secrets.record_written(&ctx.workspace, real, &content);
    Ok(content.len())
}

/// A placeholder that cannot be resolved, as the model sees it.
pub(crate) fn credential_error(e: SecretsError) -> ToolError {
    let hint = match &e {
        SecretsError::Unknown(_) => {
            "use only credentials that exist; ask the user to add a missing one"
        }
        SecretsError::Unrestorable => "change it with exec, or ask the user",
        SecretsError::RedactedChanged { .. } => {
            "edit around [REDACTED:...] markers; read_file shows where they are"
        }
        SecretsError::OutOfScope { .. } | SecretsError::CommandOutOfScope { .. } => {
            "use the credential only where its scope allows; an operator can change the \
             scope with PUT /api/v1/credentials/KEY"
        }
    };
    ToolError::new(ToolErrorKind::InvalidArguments, e.to_string()).with_hint(hint)
}

/// The tenant's credential file index is the runtime's, never a tool's.
pub(crate) fn refuse_index(ctx: &ToolContext, real: &Path, shown: &str) -> Result<(), ToolError> {
    if ctx.secrets.is_index(real) {
        return Err(ToolError::new(
            ToolErrorKind::Denied,
            format!("{shown} is kept by the runtime and cannot be read or changed by a tool"),
        ));
    }
    Ok(())
}
