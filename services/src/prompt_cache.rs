//! The system prompt, kept per workspace and rebuilt only when something it is built
//! from changes: the runtime's framing (the workspace, the iteration limit, today's
//! UTC date) or a workspace file it reads (`AGENTS.md`, `SOUL.md`, `USER.md`,
//! `memory/MEMORY.md`, the skills' `SKILL.md` files and the scripts).
//!
//! A change is seen by a cheap check on every use: the metadata (inode, size, mode,
//! modification and change time to the nanosecond) of each of those files, of what a
//! symlink among them leads to, and of the `skills/` and `scripts/` folders and their
//! entries, so a file added, removed, rewritten or renamed is noticed. It costs a few
//! `stat` calls and two directory listings, against reading and parsing every file.
//! A stable first message is also what lets a provider cache the prompt's prefix.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;

use crate::context::{WORKSPACE_PROMPT_FILES, system_prompt};
use crate::scripts::SCRIPTS_DIR;
use crate::skills::SKILLS_DIR;

/// Most entries of `skills/` or `scripts/` looked at; the listings stop well before.
const MAX_WATCHED_ENTRIES: usize = 1024;

/// What a path looked like: `None` when it does not exist.
type Stamp = Option<(u64, u64, u32, i64, i64, i64, i64)>;

fn stamp(meta: std::io::Result<std::fs::Metadata>) -> Stamp {
    meta.ok().map(|m| {
        (
            m.ino(),
            m.size(),
            m.mode(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    })
}

/// A path as itself and as what it leads to (the same for a plain file).
fn stamps(path: &Path, into: &mut Vec<Stamp>) {
    into.push(stamp(std::fs::symlink_metadata(path)));
    into.push(stamp(std::fs::metadata(path)));
}

/// Everything the prompt of `root` is read from, as metadata.
fn fingerprint(root: &Path) -> Vec<Stamp> {
    let mut seen = Vec::new();
    for name in WORKSPACE_PROMPT_FILES {
        stamps(&root.join(name), &mut seen);
    }
    for (dir, inner) in [(SKILLS_DIR, Some("SKILL.md")), (SCRIPTS_DIR, None)] {
        let dir = root.join(dir);
        stamps(&dir, &mut seen);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .take(MAX_WATCHED_ENTRIES)
            .map(|e| e.path())
            .collect();
        paths.sort();
        for path in paths {
            stamps(&path, &mut seen);
            if let Some(inner) = inner {
                stamps(&path.join(inner), &mut seen);
            }
        }
    }
    seen
}

struct Kept {
    max_iterations: u32,
    today: NaiveDate,
    fingerprint: Vec<Stamp>,
    prompt: Arc<str>,
}

/// The system prompts of a node's workspaces (one per tenant).
#[derive(Default)]
pub struct SystemPromptCache {
    kept: Mutex<HashMap<PathBuf, Kept>>,
}

impl SystemPromptCache {
    /// The system prompt of the workspace at `root`, rebuilt only when what it is
    /// built from changed since it was last built. Blocking (it reads the workspace).
    pub fn get(&self, root: &Path, max_iterations: u32, today: NaiveDate) -> Arc<str> {
        let fingerprint = fingerprint(root);
        {
            let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(k) = kept.get(root)
                && k.max_iterations == max_iterations
                && k.today == today
                && k.fingerprint == fingerprint
            {
                return k.prompt.clone();
            }
        }
        // Built outside the lock: another workspace's turn need not wait for it.
        let prompt: Arc<str> = system_prompt(root, max_iterations, today).into();
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.insert(
            root.to_path_buf(),
            Kept {
                max_iterations,
                today,
                fingerprint,
                prompt: prompt.clone(),
            },
        );
        prompt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    #[test]
    fn the_prompt_is_kept_until_a_file_it_reads_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cache = SystemPromptCache::default();
        let first = cache.get(root, 5, day(1));
        assert!(Arc::ptr_eq(&first, &cache.get(root, 5, day(1))), "kept");
        assert!(first.contains("2026-12-01"));

        std::fs::write(root.join("SOUL.md"), "Be kind.").unwrap();
        let soul = cache.get(root, 5, day(1));
        assert!(soul.contains("Be kind."), "{soul}");
        std::fs::write(root.join("SOUL.md"), "Be terse").unwrap();
        assert!(
            cache.get(root, 5, day(1)).contains("Be terse"),
            "same size, rewritten"
        );

        std::fs::create_dir_all(root.join("skills/deploy")).unwrap();
        std::fs::write(
            root.join("skills/deploy/SKILL.md"),
            "---\nname: deploy\ndescription: Ships it.\n---\n",
        )
        .unwrap();
        assert!(cache.get(root, 5, day(1)).contains("Ships it."));
        std::fs::create_dir_all(root.join("scripts")).unwrap();
        std::fs::write(root.join("scripts/build.sh"), "#!/bin/sh\n# Builds it.\n").unwrap();
        let scripts = cache.get(root, 5, day(1));
        assert!(scripts.contains("build.sh"), "{scripts}");
        std::fs::remove_file(root.join("scripts/build.sh")).unwrap();
        assert!(!cache.get(root, 5, day(1)).contains("build.sh"));

        let kept = cache.get(root, 5, day(1));
        assert!(
            !Arc::ptr_eq(&kept, &cache.get(root, 5, day(2))),
            "a new day"
        );
        assert!(cache.get(root, 6, day(2)).contains("at most 6 model calls"));
    }
}
