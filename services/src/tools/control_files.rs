//! Execution-control files: files that make an otherwise harmless program run code.
//! `git status` runs `core.fsmonitor` from `.git/config`, `make` runs the `Makefile`,
//! `npm` runs `package.json` scripts, Python runs `sitecustomize.py` and `.pth` files,
//! a shell runs its rc files. An allow rule on such a program trusts these files, so
//! the agent's file tools may not change them on their own: a write to one is
//! infrastructure tier (a human reviews it unless a rule allows that very write).

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::Workspace;

/// Folders whose every file controls execution (anywhere in the workspace).
const CONTROL_DIRS: [&str; 6] = [
    ".git",
    ".githooks",
    ".husky",
    ".hg",
    ".cargo",
    ".devcontainer",
];

/// File names that control execution wherever they are.
const CONTROL_NAMES: [&str; 37] = [
    ".gitmodules",
    ".gitattributes",
    ".pre-commit-config.yaml",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".kshrc",
    ".envrc",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pnpmfile.cjs",
    "makefile",
    "gnumakefile",
    "package.json",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "sitecustomize.py",
    "usercustomize.py",
    "conftest.py",
    "pytest.ini",
    "tox.ini",
    "cargo.toml",
    "build.rs",
    "rust-toolchain",
    "rust-toolchain.toml",
    "justfile",
    "rakefile",
    "gemfile",
    ".gdbinit",
];

/// Extensions of files that control execution (`*.mk` makefiles, `*.pth` Python path
/// hooks).
const CONTROL_EXTENSIONS: [&str; 2] = ["mk", "pth"];

/// The tools that write files, and where their target paths are.
fn written_paths(tool: &str, args: &Value) -> Vec<String> {
    match tool {
        "write_file" | "edit_file" => args
            .get("path")
            .and_then(Value::as_str)
            .map(|p| vec![p.to_owned()])
            .unwrap_or_default(),
        "patch_file" => args
            .get("patch")
            .and_then(Value::as_str)
            .map(patch_paths)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Every path a unified or git diff names, read generously: a header line the patch
/// tool might take as a target counts.
fn patch_paths(patch: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in patch.lines() {
        let rest = [
            "--- ",
            "+++ ",
            "diff --git ",
            "rename to ",
            "rename from ",
            "copy to ",
            "copy from ",
        ]
        .iter()
        .find_map(|prefix| line.strip_prefix(prefix));
        let Some(rest) = rest else {
            continue;
        };
        for word in rest.split_whitespace() {
            let word = word.trim_matches('"');
            let word = word
                .strip_prefix("a/")
                .or_else(|| word.strip_prefix("b/"))
                .unwrap_or(word);
            if !word.is_empty() && word != "/dev/null" {
                paths.push(word.to_owned());
            }
        }
    }
    paths
}

/// Whether `path` (relative to the workspace or absolute) names an execution-control
/// file, by its components alone.
fn is_control(path: &Path) -> bool {
    let mut names: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name.to_string_lossy().to_lowercase()),
            Component::ParentDir => {
                names.pop();
            }
            _ => {}
        }
    }
    let Some(last) = names.last() else {
        return false;
    };
    if names.iter().any(|n| CONTROL_DIRS.contains(&n.as_str())) {
        return true;
    }
    if CONTROL_NAMES.contains(&last.as_str()) {
        return true;
    }
    Path::new(last)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| CONTROL_EXTENSIONS.contains(&e))
}

/// Where `path` really lands: symlinks followed as far as the file or its nearest
/// existing folder exists, relative to the workspace root when inside it.
fn resolved(workspace: &Workspace, path: &str) -> Option<PathBuf> {
    let target = workspace.root().join(path);
    let mut existing = target.as_path();
    let mut tail = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut full = real;
            for part in tail.iter().rev() {
                full.push(part);
            }
            let root = workspace
                .root()
                .canonicalize()
                .unwrap_or_else(|_| workspace.root().to_path_buf());
            return Some(
                full.strip_prefix(&root)
                    .map(Path::to_path_buf)
                    .unwrap_or(full),
            );
        }
        tail.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    }
}

/// Extensions of scripts an allowed command may name as its program or argument.
const SCRIPT_EXTENSIONS: [&str; 12] = [
    "sh", "bash", "zsh", "py", "js", "mjs", "cjs", "ts", "rb", "pl", "php", "lua",
];

/// The workspace files that allowed commands run by name, or may read as code: every
/// word of an `exec` allow rule's command pattern that is a path (`./deploy`,
/// `tools/*.sh`), a script (`check.py`), a Python module after `-m` (`app.main` is
/// `app/main.py` and `app/main/`), or any other plain argument (`sh run`, `make
/// deploy`: a file of that name could be what the program reads). An allow on
/// `./deploy` trusts what `deploy` holds, so the agent may not rewrite it on its own.
/// Returned as globs relative to the workspace.
pub fn files_run_by(command_patterns: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for pattern in command_patterns {
        let words: Vec<&str> = pattern.split_whitespace().collect();
        for (i, raw) in words.iter().enumerate() {
            let word = raw.trim_matches(|c| c == '"' || c == '\'');
            // A final `status*` is the word `status` and any arguments after it.
            let word = if i + 1 == words.len() && word != "*" {
                word.trim_end_matches('*')
            } else {
                word
            };
            let pathish = word.contains('/');
            let word = word.strip_prefix("./").unwrap_or(word);
            if word.is_empty() || word.starts_with('-') || word.starts_with('/') {
                continue;
            }
            if word.split('/').any(|segment| segment == "..") {
                continue;
            }
            let globbed = word.contains(['*', '?', '[', '{']);
            let scriptish = Path::new(word.trim_end_matches('*'))
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| SCRIPT_EXTENSIONS.contains(&e));
            let module = i > 0 && words[i - 1] == "-m";
            if module && !globbed {
                let path = word.replace('.', "/");
                files.push(format!("{path}.py"));
                files.push(format!("{path}/**"));
            }
            // The program itself (the first word) is looked up on PATH unless it is a
            // path; later plain words may name workspace files.
            let plain_argument = i > 0 && !globbed;
            if pathish || scriptish || plain_argument {
                files.push(word.to_owned());
            }
        }
    }
    files.sort();
    files.dedup();
    files
}

/// Whether `path` (relative to the workspace) is one of `globs`.
fn named_by(globs: &[String], path: &Path) -> bool {
    let text = path.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text);
    globs.iter().any(|g| {
        globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map(|g| g.compile_matcher().is_match(text))
            .unwrap_or(true)
    })
}

/// `path` with `.` and `..` worked out, as the workspace would place it.
fn lexical(path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The execution-control files a call would write, as the model named them: the
/// fixed list above plus `run_by` (see [`files_run_by`]). Empty for calls that write
/// none (and for tools that do not write files).
pub fn execution_control_writes(
    tool: &str,
    args: &Value,
    workspace: &Workspace,
    run_by: &[String],
) -> Vec<String> {
    written_paths(tool, args)
        .into_iter()
        .filter(|path| {
            let real = resolved(workspace, path);
            is_control(Path::new(path))
                || real.as_deref().is_some_and(is_control)
                || named_by(run_by, &lexical(path))
                || real.as_deref().is_some_and(|r| named_by(run_by, r))
        })
        .collect()
}

/// Programs that write the files their arguments name (`cp a b`, `tee f`, `sed -i`).
const WRITERS: [&str; 16] = [
    "cp", "mv", "tee", "install", "ln", "dd", "sed", "truncate", "rsync", "chmod", "perl", "curl",
    "wget", "touch", "awk", "python3",
];

/// Programs that write paths their arguments do not name (an archive's or a diff's
/// own paths): with one of them in a line, any control file could be written.
const EXTRACTORS: [&str; 6] = ["tar", "unzip", "cpio", "patch", "git", "bsdtar"];

/// The execution-control files (see [`execution_control_writes`]) that an `exec`
/// command line would write through a file-writing program among its simple commands:
/// `mv payload scripts/deploy.sh`, `tee .git/config`, `sed -i s/a/b/ Makefile`. For
/// lines an allow rule covers (plain simple commands, literal words): such a line
/// still needs a review, unless an allow rule spells out that very simple command
/// (`tee artifact.txt` allowed word for word is the operator's own choice).
/// `command_patterns` are the allow rules' command patterns.
pub fn command_writes_control_files(
    command: &str,
    workspace: &Workspace,
    command_patterns: &[&str],
) -> Vec<String> {
    let run_by = files_run_by(command_patterns);
    let spelled: Vec<Vec<&str>> = command_patterns
        .iter()
        .map(|p| p.split_whitespace().collect())
        .collect();
    let mut found = Vec::new();
    let separators = |c: char| matches!(c, ';' | '|' | '&' | '\n');
    for simple in command.split(separators) {
        // Quotes and backslashes go, as the shell removes them: `Make\file` and
        // `.gi''t` are `Makefile` and `.git`.
        let words: Vec<String> = simple
            .split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| !matches!(c, '"' | '\'' | '\\'))
                    .collect()
            })
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let Some(program) = words.first() else {
            continue;
        };
        let name = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(program);
        if spelled.contains(&words) {
            continue;
        }
        if EXTRACTORS.contains(&name) && !words.iter().skip(1).all(|w| w.starts_with('-')) {
            // For git, only the subcommands that write the work tree from elsewhere.
            let writes = name != "git"
                || words.iter().skip(1).any(|w| {
                    matches!(
                        *w,
                        "apply"
                            | "am"
                            | "checkout"
                            | "restore"
                            | "switch"
                            | "reset"
                            | "pull"
                            | "merge"
                            | "stash"
                            | "clone"
                            | "worktree"
                            | "mv"
                            | "rebase"
                    )
                });
            if writes {
                found.push(format!("whatever `{name}` unpacks or patches"));
            }
            continue;
        }
        if !WRITERS.contains(&name) {
            continue;
        }
        let last = words.last().copied().unwrap_or_default();
        let into_dir = last.ends_with('/') || workspace.root().join(last).is_dir();
        let mut targets: Vec<String> = words[1..].iter().map(|w| (*w).to_owned()).collect();
        // `cp a b dir/` writes dir/a and dir/b.
        if into_dir && words.len() > 2 {
            for source in &words[1..words.len() - 1] {
                if let Some(base) = Path::new(source).file_name().and_then(|b| b.to_str()) {
                    targets.push(format!("{}/{base}", last.trim_end_matches('/')));
                }
            }
        }
        for word in &targets {
            let word = word.as_str();
            let path = word
                .strip_prefix("of=")
                .or_else(|| word.strip_prefix("--target-directory="))
                .unwrap_or(word);
            if path.is_empty() || path.starts_with('-') {
                continue;
            }
            let real = resolved(workspace, path);
            let hit = is_control(Path::new(path))
                || real.as_deref().is_some_and(is_control)
                || named_by(&run_by, &lexical(path))
                || real.as_deref().is_some_and(|r| named_by(&run_by, r));
            if hit {
                found.push(path.to_owned());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn git_internals_hooks_rc_and_build_files_are_control_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path(), true).unwrap();
        let write = |path: &str| {
            execution_control_writes(
                "write_file",
                &json!({"path": path, "content": "x"}),
                &ws,
                &[],
            )
        };
        for path in [
            ".git/config",
            "./.git/hooks/pre-commit",
            "src/../.git/config",
            "sub/.GIT/config",
            ".git",
            "Makefile",
            "rules.mk",
            "web/package.json",
            "lib/site.pth",
            ".bashrc",
            ".husky/pre-commit",
            ".cargo/config.toml",
            "sitecustomize.py",
        ] {
            assert_eq!(write(path), [path], "{path}");
        }
        for path in [
            "src/main.rs",
            "README.md",
            "git/config",
            "notes/.gitx",
            "Makefile.txt",
        ] {
            assert!(write(path).is_empty(), "{path}");
        }
        assert!(
            execution_control_writes("read_file", &json!({"path": ".git/config"}), &ws, &[])
                .is_empty()
        );
    }

    #[test]
    fn a_symlink_into_git_and_every_file_of_a_patch_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::os::unix::fs::symlink(dir.path().join(".git"), dir.path().join("innocent")).unwrap();
        let ws = Workspace::new(dir.path(), true).unwrap();
        let args = json!({"path": "innocent/config", "content": "[core]"});
        assert_eq!(
            execution_control_writes("edit_file", &args, &ws, &[]),
            ["innocent/config"]
        );
        let patch = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-a\n+b\n\
                     --- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-a\n+b\n";
        let found = execution_control_writes("patch_file", &json!({"patch": patch}), &ws, &[]);
        assert!(found.contains(&".git/config".to_owned()), "{found:?}");
        assert!(!found.contains(&"src/lib.rs".to_owned()));
    }

    #[test]
    fn scripts_an_allow_rule_runs_by_name_are_control_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path(), true).unwrap();
        let run_by = files_run_by(&[
            "./scripts/report.sh*",
            "python3 check.py *",
            "bash tools/*.sh",
            "git status*",
        ]);
        assert_eq!(
            run_by,
            ["check.py", "scripts/report.sh", "status", "tools/*.sh"]
        );
        let write = |path: &str| {
            execution_control_writes(
                "write_file",
                &json!({"path": path, "content": "touch PWNED"}),
                &ws,
                &run_by,
            )
        };
        for path in ["scripts/report.sh", "./check.py", "x/../tools/a.sh"] {
            assert_eq!(write(path), [path], "{path}");
        }
        for path in ["scripts/other.sh", "tools/sub/a.sh", "check.py.bak", "git"] {
            assert!(write(path).is_empty(), "{path}");
        }
    }

    #[test]
    fn programs_run_by_path_modules_and_plain_arguments_are_control_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path(), true).unwrap();
        let run_by = files_run_by(&[
            "./deploy",
            "./gradlew build*",
            "python3 -m app.main*",
            "sh ./run",
            "node server.mjs",
        ]);
        let write = |path: &str| {
            execution_control_writes(
                "edit_file",
                &json!({"path": path, "old_text": "a", "new_text": "b"}),
                &ws,
                &run_by,
            )
        };
        for path in [
            "deploy",
            "./gradlew",
            "app/main.py",
            "app/main/__main__.py",
            "run",
            "server.mjs",
        ] {
            assert_eq!(write(path), [path], "{path}");
        }
        assert!(write("src/app.py").is_empty());
    }

    #[test]
    fn an_allowed_file_writer_aimed_at_a_control_file_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path(), true).unwrap();
        let rules = ["./scripts/deploy.sh", "mv *", "tee *", "tee notes.txt"];
        let check = |command: &str| command_writes_control_files(command, &ws, &rules);
        assert_eq!(check("mv payload scripts/deploy.sh"), ["scripts/deploy.sh"]);
        assert_eq!(check("echo x | tee .git/config"), [".git/config"]);
        assert_eq!(check("sed -i s/a/b/ Makefile"), ["Makefile"]);
        assert_eq!(
            check("dd if=x of=.git/hooks/pre-commit"),
            [".git/hooks/pre-commit"]
        );
        assert!(
            check("./scripts/deploy.sh").is_empty(),
            "running it is what the rule allows"
        );
        assert!(check("mv a.txt b.txt").is_empty());
        assert!(
            check("cat .git/config").is_empty(),
            "reading is not writing"
        );
        assert!(
            check("echo x | tee notes.txt").is_empty(),
            "an allow rule spelled out this very write"
        );
        assert!(check("git status").is_empty());
        // Quoting and escapes are read as the shell reads them.
        assert_eq!(check("cp payload Make\\file"), ["Makefile"]);
        assert_eq!(
            check("cp p .gi''t/hooks/pre-commit"),
            [".git/hooks/pre-commit"]
        );
        // A directory destination writes the sources' names inside it.
        std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
        assert_eq!(check("cp deploy.sh scripts"), ["scripts/deploy.sh"]);
        assert_eq!(check("mv deploy.sh scripts/"), ["scripts/deploy.sh"]);
        // What an archive or a patch holds is not on the command line.
        assert_eq!(check("tar xf x.tar").len(), 1);
        assert_eq!(check("git apply d.diff").len(), 1);
    }
}
