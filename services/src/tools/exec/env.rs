//! The environment every command starts with: a few inherited variables (never API
//! keys or tokens), a `PATH` without entries the agent could plant programs in, and
//! git settings that a workspace's own `.git/config` cannot turn into program runs.
//!
//! Git reads command-line configuration (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/
//! `GIT_CONFIG_VALUE_n`) after every file, so these values win over the repository's.
//! What this cannot reach: keys whose names the repository chooses (`filter.<driver>.*`,
//! `diff.<driver>.textconv`/`command`, `merge.<driver>.driver`, `remote.<name>.uploadpack`)
//! and `diff.external`, which no later value can unset. Programs those run stay inside
//! the same sandbox as the command itself.

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Environment variables a command inherits; everything else (API keys, tokens) stays out.
const KEPT_ENV: [&str; 4] = ["LANG", "LC_ALL", "TERM", "TZ"];

/// Git settings that stop a planted repository config from running programs during
/// ordinary commands (`status`, `log`, `diff`, `commit`, `fetch`).
const GIT_CONFIG: [(&str, &str); 16] = [
    // A workspace holding `HEAD`, `config` and `objects/` would be taken as a bare
    // repository whose `config` (diff.external, textconv) runs programs.
    ("safe.bareRepository", "explicit"),
    // `git status` would run the fsmonitor hook program.
    ("core.fsmonitor", "false"),
    // Hooks (commit, checkout, merge, reference updates) run programs.
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    // Empty: git asks no askpass program.
    ("core.askPass", ""),
    // A plain ssh that ignores any `~/.ssh/config`.
    ("core.sshCommand", "ssh -F /dev/null"),
    // An empty value clears every helper configured before it.
    ("credential.helper", ""),
    // `ext::` URLs run arbitrary commands.
    ("protocol.ext.allow", "never"),
    // Signature checks and signing run `gpg.program` and friends.
    ("log.showSignature", "false"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("gpg.program", "gpg"),
    ("gpg.ssh.program", "ssh-keygen"),
    ("gpg.x509.program", "gpgsm"),
];

/// Every variable a command starts with (before credentials it is given): kept ones,
/// `HOME` (the call's own empty temp dir), `TMPDIR`, a filtered `PATH` and the git
/// hardening.
///
/// `HOME` is not the workspace: programs read their user config from it (`~/.curlrc`,
/// `~/.kube/config` with its exec plugins, `~/.aws/config` `credential_process`,
/// `~/.psqlrc`, `~/.wgetrc`, go's env file), and an allowed `kubectl get pods` must not
/// run what the agent wrote into `.kube/config` in the workspace.
pub(super) fn command_env(root: &Path, tmp: &Path) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |name: &str, value: &OsStr| env.push((name.into(), value.to_owned()));
    set("HOME", tmp.as_os_str());
    set("TMPDIR", tmp.as_os_str());
    // Git looks for a repository no higher than the workspace.
    if let Some(parent) = root.parent() {
        set("GIT_CEILING_DIRECTORIES", parent.as_os_str());
    }
    if let Some(path) = std::env::var_os("PATH") {
        set("PATH", &safe_path(&path, root));
    }
    for name in KEPT_ENV {
        if let Some(value) = std::env::var_os(name) {
            set(name, &value);
        }
    }
    set("GIT_CONFIG_NOSYSTEM", "1".as_ref());
    set("GIT_CONFIG_GLOBAL", "/dev/null".as_ref());
    set("GIT_TERMINAL_PROMPT", "0".as_ref());
    set("GIT_PAGER", "cat".as_ref());
    set("PAGER", "cat".as_ref());
    set("GIT_EDITOR", "true".as_ref());
    set("GIT_CONFIG_COUNT", GIT_CONFIG.len().to_string().as_ref());
    for (i, (key, value)) in GIT_CONFIG.iter().enumerate() {
        set(&format!("GIT_CONFIG_KEY_{i}"), key.as_ref());
        set(&format!("GIT_CONFIG_VALUE_{i}"), value.as_ref());
    }
    env
}

/// `PATH` without entries that are empty or relative (they resolve against the
/// workspace), that do not exist, or that lie inside the workspace: the agent could
/// plant a `git` there that every later command would run.
pub(super) fn safe_path(path: &OsStr, root: &Path) -> OsString {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let kept: Vec<_> = std::env::split_paths(path)
        .filter(|entry| entry.is_absolute())
        .filter(|entry| {
            entry
                .canonicalize()
                .is_ok_and(|real| !real.starts_with(&root))
        })
        .collect();
    std::env::join_paths(kept).unwrap_or_default()
}
