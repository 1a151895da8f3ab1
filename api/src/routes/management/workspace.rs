//! `/workspace/tree` and `/workspace/file`: the caller's tenant's workspace, always
//! confined to it whatever `tools.restrictToWorkspace` says. Paths are relative; `..`
//! out of the root, absolute paths and symlinks leading out are refused. File
//! contents are redacted like tool output: a file the agent wrote with a credential
//! in it does not hand the credential to an API caller.

use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use facio_services::store::AuditEventKind;
use facio_services::tools::Workspace;
use facio_services::vault::tenant_secrets;
use serde::Deserialize;
use serde_json::json;

use super::json::{Body, Params};
use super::{Caller, audit_change};
use crate::error::ApiError;
use crate::routes::AppState;

/// Largest file served or written through the API.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most entries one tree listing returns.
const MAX_ENTRIES: usize = 5000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspace/tree", get(tree))
        .route("/workspace/file", get(read).put(write).delete(remove))
}

fn workspace(state: &AppState, caller: &Caller) -> Result<Workspace, ApiError> {
    let root = state.config.tenant_workspace_dir(caller.tenant());
    Workspace::new(root, true).map_err(|e| ApiError::internal(e.to_string()))
}

/// The real path of `path` inside the workspace, or a 400 naming why not.
fn resolve(workspace: &Workspace, path: &str) -> Result<PathBuf, ApiError> {
    let refuse = |why: &str| {
        ApiError::invalid_request(Some("path"), format!("path {path:?} is refused: {why}"))
    };
    if path.is_empty() {
        return Err(refuse("it is empty"));
    }
    if Path::new(path).is_absolute() {
        return Err(refuse("paths are relative to the workspace"));
    }
    if path.contains('\0') {
        return Err(refuse("it contains a NUL byte"));
    }
    workspace
        .resolve(path)
        .map_err(|_| refuse("it leads outside the workspace"))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TreeQuery {
    /// A directory relative to the workspace (default: its root).
    #[param(min_length = 1, pattern = "^[^/\\x00][^\\x00]*$")]
    path: Option<String>,
    depth: Option<u32>,
}

/// A workspace entry; directories list their children down to the depth asked.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Entry {
    name: String,
    /// Relative to the workspace.
    path: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^(file|dir|symlink)$")]
    kind: &'static str,
    /// Bytes, for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    children: Option<Vec<Entry>>,
}

/// `GET /workspace/tree`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Tree {
    path: String,
    entries: Vec<Entry>,
    /// Whether the listing stopped at its size limit.
    truncated: bool,
}

/// `GET /workspace/file`: a file's text with every known secret redacted.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct FileView {
    path: String,
    #[schema(pattern = "^(utf-8|binary)$")]
    encoding: &'static str,
    /// The text (`null` for a binary file).
    content: Option<String>,
    size: u64,
}

/// `PUT /workspace/file`: what was written.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Written {
    path: String,
    size: usize,
}

async fn tree(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<TreeQuery>,
) -> Result<Json<Tree>, ApiError> {
    let workspace = workspace(&state, &caller)?;
    let shown = q.path.unwrap_or_else(|| ".".to_owned());
    let real = resolve(&workspace, &shown)?;
    if !real.is_dir() {
        return Err(ApiError::not_found(format!(
            "directory {shown} does not exist"
        )));
    }
    let depth = q.depth.unwrap_or(2).clamp(1, 10);
    let root = workspace.root().to_path_buf();
    let listing = tokio::task::spawn_blocking(move || {
        let mut budget = MAX_ENTRIES;
        let entries = list(&root, &real, depth, &mut budget);
        (entries, budget == 0)
    })
    .await
    .map_err(|e| ApiError::internal(format!("listing failed: {e}")))?;
    Ok(Json(Tree {
        path: shown,
        entries: listing.0,
        truncated: listing.1,
    }))
}

/// Entries of `dir`, directories first, descending `depth - 1` more levels. Symlinks
/// are reported, never followed.
fn list(root: &Path, dir: &Path, depth: u32, budget: &mut usize) -> Vec<Entry> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(bool, String, PathBuf, std::fs::Metadata)> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            Some((
                !meta.is_dir(),
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                meta,
            ))
        })
        .collect();
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut entries = Vec::new();
    for (_, name, path, meta) in found {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let relative = path
            .strip_prefix(root)
            .map_or_else(|_| name.clone(), |p| p.display().to_string());
        let kind = if meta.file_type().is_symlink() {
            "symlink"
        } else if meta.is_dir() {
            "dir"
        } else {
            "file"
        };
        let size = (kind == "file").then_some(meta.len());
        let children = (kind == "dir" && depth > 1).then(|| list(root, &path, depth - 1, budget));
        entries.push(Entry {
            name,
            path: relative,
            kind,
            size,
            children,
        });
    }
    entries
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct FileQuery {
    /// A file relative to the workspace.
    #[param(min_length = 1, pattern = "^[^/\\x00][^\\x00]*$")]
    path: String,
}

async fn read(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<FileQuery>,
) -> Result<Json<FileView>, ApiError> {
    let workspace = workspace(&state, &caller)?;
    let real = resolve(&workspace, &q.path)?;
    let missing = || ApiError::not_found(format!("file {} does not exist", q.path));
    let meta = tokio::fs::metadata(&real).await.map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ApiError::too_large(format!(
            "{} is {} bytes; the API serves files up to {MAX_FILE_BYTES} bytes",
            q.path,
            meta.len()
        )));
    }
    let bytes = tokio::fs::read(&real).await.map_err(|_| missing())?;
    let secrets = tenant_secrets(
        state.runtime.store().as_ref(),
        state.runtime.vault(),
        caller.tenant(),
    )
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (encoding, content) = match String::from_utf8(bytes) {
        Ok(text) => ("utf-8", Some(secrets.redact(&text))),
        Err(_) => ("binary", None),
    };
    Ok(Json(FileView {
        path: q.path,
        encoding,
        content,
        size: meta.len(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewContent {
    content: String,
}

async fn write(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<FileQuery>,
    Body(body): Body<NewContent>,
) -> Result<Json<Written>, ApiError> {
    let workspace = workspace(&state, &caller)?;
    let real = resolve(&workspace, &q.path)?;
    if body.content.len() as u64 > MAX_FILE_BYTES {
        return Err(ApiError::too_large(format!(
            "the API writes files up to {MAX_FILE_BYTES} bytes"
        )));
    }
    // What was there, to put back if the change cannot be recorded.
    let before = match tokio::fs::symlink_metadata(&real).await {
        Ok(meta) if meta.is_file() => Some(
            tokio::fs::read(&real)
                .await
                .map_err(|e| ApiError::internal(format!("cannot read {}: {e}", q.path)))?,
        ),
        _ => None,
    };
    facio_services::tools::atomic_write(&real, &q.path, body.content.as_bytes())
        .await
        .map_err(|e| ApiError::invalid_request(Some("path"), e.to_string()))?;
    let action = if before.is_some() {
        "updated"
    } else {
        "created"
    };
    let data = json!({"path": q.path, "what": what(&q.path), "action": action,
        "bytes": body.content.len()});
    let recorded = audit_change(
        &state,
        &caller,
        caller.tenant(),
        AuditEventKind::WorkspaceChanged,
        data,
    )
    .await;
    if let Err(e) = recorded {
        put_back(&real, &q.path, before).await;
        return Err(e);
    }
    Ok(Json(Written {
        size: body.content.len(),
        path: q.path,
    }))
}

async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let workspace = workspace(&state, &caller)?;
    let real = resolve(&workspace, &q.path)?;
    let is_file = tokio::fs::symlink_metadata(&real)
        .await
        .is_ok_and(|m| m.is_file());
    if !is_file {
        return Err(ApiError::not_found(format!(
            "file {} does not exist",
            q.path
        )));
    }
    let before = tokio::fs::read(&real)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read {}: {e}", q.path)))?;
    tokio::fs::remove_file(&real)
        .await
        .map_err(|e| ApiError::internal(format!("cannot delete {}: {e}", q.path)))?;
    let recorded = audit_change(
        &state,
        &caller,
        caller.tenant(),
        AuditEventKind::WorkspaceChanged,
        json!({"path": q.path, "what": what(&q.path), "action": "deleted"}),
    )
    .await;
    if let Err(e) = recorded {
        put_back(&real, &q.path, Some(before)).await;
        return Err(e);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What a workspace path holds, for the record: a skill (under `skills/`), a script
/// (under `scripts/`) or another file.
fn what(path: &str) -> &'static str {
    let first = Path::new(path)
        .components()
        .find_map(|c| match c {
            std::path::Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .unwrap_or_default();
    match first {
        facio_services::skills::SKILLS_DIR => "skill",
        facio_services::scripts::SCRIPTS_DIR => "script",
        _ => "file",
    }
}

/// Puts a file back as it was before a change that could not be recorded: its old
/// content, or gone if it was new. Best effort: the change already failed.
async fn put_back(real: &Path, shown: &str, before: Option<Vec<u8>>) {
    let restored = match before {
        Some(content) => facio_services::tools::atomic_write(real, shown, &content)
            .await
            .map_err(|e| e.to_string()),
        None => tokio::fs::remove_file(real)
            .await
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = restored {
        tracing::error!(
            path = shown,
            "a workspace change could not be recorded or taken back: {e}"
        );
    }
}
