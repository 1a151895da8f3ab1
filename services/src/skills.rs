//! Skills: instructions an operator drops into the workspace as
//! `skills/<name>/SKILL.md`, optionally opening with a front matter block
//! (`---`, `name: ...`, `description: ...`, `---`). The system prompt lists each skill
//! by name and description only; the agent reads a skill's file when a task calls for
//! it, so a hundred skills cost a hundred lines of context, not a hundred files.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The folder under the workspace that holds skills.
pub const SKILLS_DIR: &str = "skills";

/// Most folder entries looked at, so a folder flooded with files costs little.
pub(crate) const MAX_ENTRIES: usize = 2_000;

/// Most skills listed (the rest are skipped, in name order).
const MAX_SKILLS: usize = 100;

/// Most characters of a description.
const MAX_DESCRIPTION_CHARS: usize = 300;

/// Most bytes of a skill file read to find its name and description.
const MAX_HEAD_BYTES: u64 = 16 * 1024;

/// One skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skill {
    /// From the front matter, else the folder's name.
    pub name: String,
    /// From the front matter, else the first line of text; may be empty.
    pub description: String,
    /// The skill file, relative to the workspace (`skills/<folder>/SKILL.md`).
    pub path: String,
    pub size: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The workspace's skills, by folder name. Folders without a `SKILL.md`, and
/// symlinks (which could point outside the workspace), are skipped.
pub fn list_skills(workspace: &Path) -> Vec<Skill> {
    let Some(entries) = real_dir(&workspace.join(SKILLS_DIR)) else {
        return Vec::new();
    };
    let mut folders: Vec<String> = entries
        .flatten()
        .take(MAX_ENTRIES)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    folders.sort();
    folders
        .into_iter()
        .filter_map(|folder| read_skill(workspace, &folder))
        .take(MAX_SKILLS)
        .collect()
}

fn read_skill(workspace: &Path, folder: &str) -> Option<Skill> {
    let path = format!("{SKILLS_DIR}/{folder}/SKILL.md");
    let file = workspace.join(&path);
    let meta = std::fs::symlink_metadata(&file).ok()?;
    if !meta.is_file() {
        return None;
    }
    let head = read_head(workspace, &file)?;
    let (name, description) = describe(&head);
    Some(Skill {
        name: name.unwrap_or_else(|| folder.to_owned()),
        description: description.unwrap_or_default(),
        path,
        size: meta.len(),
        updated_at: meta.modified().ok().map(DateTime::<Utc>::from),
    })
}

/// The entries of `dir` if it is a real directory (not a symlink, which could lead
/// out of the workspace).
pub(crate) fn real_dir(dir: &Path) -> Option<std::fs::ReadDir> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    if !meta.is_dir() {
        return None;
    }
    std::fs::read_dir(dir).ok()
}

/// The start of `file` as text (invalid UTF-8 replaced), if it is a regular file that
/// really lies inside `workspace`. The file is opened without following a final
/// symlink, and where the opened file really is is checked afterwards, so a folder on
/// the way swapped for a symlink after listing cannot lead the read outside.
pub(crate) fn read_head(workspace: &Path, file: &Path) -> Option<String> {
    read_confined(workspace, file, MAX_HEAD_BYTES)
}

/// Up to `max_bytes` of `file` as text, under the same rules as [`read_head`].
pub(crate) fn read_confined(workspace: &Path, file: &Path, max_bytes: u64) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .ok()?;
    if !opened.metadata().ok()?.is_file() {
        return None;
    }
    let real = std::fs::read_link(format!("/proc/self/fd/{}", opened.as_raw_fd())).ok()?;
    if !real.starts_with(workspace.canonicalize().ok()?) {
        return None;
    }
    let mut bytes = Vec::new();
    opened.take(max_bytes).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Name and description from the front matter, falling back to the first line of
/// prose for the description.
fn describe(text: &str) -> (Option<String>, Option<String>) {
    let mut name = None;
    let mut description = None;
    let mut lines = text.lines();
    let mut body_start = 0;
    if lines.next().map(str::trim) == Some("---") {
        let mut consumed = 1;
        for line in lines.by_ref() {
            consumed += 1;
            if line.trim() == "---" {
                body_start = consumed;
                break;
            }
            if let Some((key, value)) = line.split_once(':') {
                let value = unquote(value.trim());
                match key.trim() {
                    "name" if !value.is_empty() => name = Some(value.to_owned()),
                    "description" if !value.is_empty() => {
                        description = Some(clip(value));
                    }
                    _ => {}
                }
            }
        }
    }
    if description.is_none() {
        description = text
            .lines()
            .skip(body_start)
            .map(|l| l.trim().trim_start_matches('#').trim())
            .find(|l| !l.is_empty() && *l != "---")
            .map(clip);
    }
    (name, description)
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
}

/// At most [`MAX_DESCRIPTION_CHARS`] characters, on one line.
pub(crate) fn clip(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// The system prompt's section listing `skills`, or nothing when there are none.
pub fn prompt_section(skills: &[Skill]) -> Option<String> {
    if skills.is_empty() {
        return None;
    }
    let mut section = String::from(
        "## Skills\nInstructions for particular tasks. When a task matches a skill, read its \
         file with read_file first and follow it.",
    );
    for skill in skills {
        section.push_str(&format!("\n- {} ({})", skill.name, skill.path));
        if !skill.description.is_empty() {
            section.push_str(": ");
            section.push_str(&skill.description);
        }
    }
    Some(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, text: &str) {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }

    #[test]
    fn front_matter_names_and_describes_a_skill() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "skills/deploy/SKILL.md",
            "---\nname: Deploy service\ndescription: \"Ship a release to production\"\n---\n# Steps\n",
        );
        write(
            dir.path(),
            "skills/notes/SKILL.md",
            "# Notes\n\nKeep meeting notes short.\n",
        );
        write(dir.path(), "skills/empty-folder/README.md", "not a skill");
        let skills = list_skills(dir.path());
        assert_eq!(skills.len(), 2, "{skills:?}");
        assert_eq!(skills[0].name, "Deploy service");
        assert_eq!(skills[0].description, "Ship a release to production");
        assert_eq!(skills[0].path, "skills/deploy/SKILL.md");
        assert_eq!(skills[1].name, "notes");
        assert_eq!(skills[1].description, "Notes");
    }

    #[test]
    fn a_symlinked_skill_file_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "SKILL.md", "secret outside");
        std::fs::create_dir_all(dir.path().join("skills/evil")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("SKILL.md"),
            dir.path().join("skills/evil/SKILL.md"),
        )
        .unwrap();
        assert!(list_skills(dir.path()).is_empty());
    }

    #[test]
    fn reads_never_leave_the_workspace_through_a_symlinked_folder() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "SKILL.md", "outside");
        write(dir.path(), "skills/real/SKILL.md", "inside");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("skills/swapped")).unwrap();
        let inside = dir.path().join("skills/real/SKILL.md");
        assert_eq!(read_head(dir.path(), &inside).as_deref(), Some("inside"));
        let through_link = dir.path().join("skills/swapped/SKILL.md");
        assert_eq!(read_head(dir.path(), &through_link), None);
    }

    #[test]
    fn the_prompt_lists_skills_without_their_bodies() {
        let skills = vec![Skill {
            name: "deploy".into(),
            description: "Ship it".into(),
            path: "skills/deploy/SKILL.md".into(),
            size: 10,
            updated_at: None,
        }];
        let section = prompt_section(&skills).unwrap();
        assert!(section.contains("- deploy (skills/deploy/SKILL.md): Ship it"));
        assert_eq!(prompt_section(&[]), None);
    }
}
