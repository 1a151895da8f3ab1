//! Scripts: programs an operator keeps in the workspace's `scripts/` folder for the
//! agent to run with `exec` (still under the tool policy and exec's limits). Each is
//! described by the first comment after its shebang, and the system prompt lists them
//! so the agent reaches for the vetted script instead of improvising a command.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::skills::{MAX_ENTRIES, clip, read_head, real_dir};

/// The folder under the workspace that holds scripts.
pub const SCRIPTS_DIR: &str = "scripts";

/// Most scripts listed (the rest are skipped, in name order).
const MAX_SCRIPTS: usize = 100;

/// One script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Script {
    /// The file's name.
    pub name: String,
    /// Relative to the workspace (`scripts/<name>`).
    pub path: String,
    /// The first comment line after the shebang; may be empty.
    pub description: String,
    /// Whether the file may be run directly (an execute bit is set).
    pub executable: bool,
    /// The interpreter the shebang names, if any.
    pub interpreter: Option<String>,
    pub size: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The regular files directly in the workspace's `scripts/` folder, by name. Hidden
/// files and symlinks are skipped.
pub fn list_scripts(workspace: &Path) -> Vec<Script> {
    let Some(entries) = real_dir(&workspace.join(SCRIPTS_DIR)) else {
        return Vec::new();
    };
    // Names first, cut to the listed number, so only those files are opened.
    let mut files: Vec<(String, std::fs::DirEntry)> = entries
        .flatten()
        .take(MAX_ENTRIES)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry)))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.truncate(MAX_SCRIPTS);
    files
        .into_iter()
        .filter_map(|(name, entry)| {
            let meta = entry.metadata().ok()?;
            let head = read_head(workspace, &entry.path())?;
            let (interpreter, description) = describe(&head);
            Some(Script {
                path: format!("{SCRIPTS_DIR}/{name}"),
                name,
                description,
                executable: meta.permissions().mode() & 0o111 != 0,
                interpreter,
                size: meta.len(),
                updated_at: meta.modified().ok().map(DateTime::<Utc>::from),
            })
        })
        .collect()
}

/// The shebang's interpreter and the first comment line (`#`, `//` or `--`).
fn describe(head: &str) -> (Option<String>, String) {
    let mut lines = head.lines();
    let mut interpreter = None;
    let mut first = lines.next();
    if let Some(shebang) = first.and_then(|l| l.strip_prefix("#!")) {
        let mut words = shebang.split_whitespace();
        let program = words.next().unwrap_or_default();
        // `#!/usr/bin/env python3` names python3, not env.
        let program = if program.ends_with("/env") {
            words.find(|w| !w.starts_with('-')).unwrap_or(program)
        } else {
            program
        };
        interpreter = Some(program.rsplit('/').next().unwrap_or(program).to_owned());
        first = lines.next();
    }
    let description = first
        .into_iter()
        .chain(lines)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| {
            ["#", "//", "--"]
                .iter()
                .find_map(|mark| l.strip_prefix(mark))
                .map(|text| clip(text.trim()))
        })
        .unwrap_or_default();
    (interpreter, description)
}

/// The system prompt's section listing `scripts`, or nothing when there are none.
pub fn prompt_section(scripts: &[Script]) -> Option<String> {
    if scripts.is_empty() {
        return None;
    }
    let mut section = String::from(
        "## Scripts\nVetted programs in the workspace; prefer them to ad-hoc commands. Run \
         one with exec (for example `./scripts/NAME` or `INTERPRETER scripts/NAME`).",
    );
    for script in scripts {
        section.push_str(&format!("\n- {}", script.path));
        if !script.description.is_empty() {
            section.push_str(": ");
            section.push_str(&script.description);
        }
    }
    Some(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_described_by_their_first_comment() {
        let dir = tempfile::tempdir().unwrap();
        let scripts = dir.path().join("scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::write(
            scripts.join("backup.sh"),
            "#!/bin/sh\n# Back up the database to S3\nset -e\n",
        )
        .unwrap();
        std::fs::set_permissions(
            scripts.join("backup.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(
            scripts.join("report.py"),
            "#!/usr/bin/env python3\nprint(1)\n",
        )
        .unwrap();
        std::fs::write(scripts.join(".hidden"), "# no").unwrap();
        let listed = list_scripts(dir.path());
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[0].name, "backup.sh");
        assert_eq!(listed[0].description, "Back up the database to S3");
        assert!(listed[0].executable);
        assert_eq!(listed[0].interpreter.as_deref(), Some("sh"));
        assert_eq!(listed[1].interpreter.as_deref(), Some("python3"));
        assert!(!listed[1].executable);
        assert_eq!(listed[1].description, "");
        let section = prompt_section(&listed).unwrap();
        assert!(section.contains("- scripts/backup.sh: Back up the database to S3"));
    }

    #[test]
    fn a_symlinked_scripts_folder_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.sh"), "# outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("scripts")).unwrap();
        assert!(list_scripts(dir.path()).is_empty());
    }
}
