use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::onboard;
use crate::config::Config;

const WORKSPACE_FILES: [&str; 5] = [
    "AGENTS.md",
    "SOUL.md",
    "USER.md",
    "HEARTBEAT.md",
    "memory/MEMORY.md",
];

fn all_paths(config: &Path, workspace: &Path) -> Vec<PathBuf> {
    let mut paths = vec![config.to_path_buf()];
    paths.extend(WORKSPACE_FILES.iter().map(|name| workspace.join(name)));
    paths
}

/// No stray temp files may be left beside what was written.
fn assert_no_temp_files(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walk");
        let name = entry.file_name().to_string_lossy();
        assert!(
            !name.ends_with(".tmp"),
            "temp file left: {}",
            entry.path().display()
        );
    }
}

#[test]
fn onboard_writes_a_config_that_loads_and_a_workspace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("nested/home/config.json");
    let workspace = dir.path().join("nested/home/workspace");

    let report = onboard(&config_path, &workspace, false).expect("onboard");
    assert_eq!(report.written, all_paths(&config_path, &workspace));
    assert!(report.kept.is_empty());
    for path in &report.written {
        let text = std::fs::read_to_string(path).expect("written file");
        assert!(text.len() > 40, "{} has starter content", path.display());
    }
    assert_no_temp_files(dir.path());

    let text = std::fs::read_to_string(&config_path).expect("config");
    assert!(text.contains("// "), "the starter config explains itself");
    assert!(text.contains("${OPENAI_API_KEY:-}"));

    // Loads without any variable set, and points at the workspace it created.
    let config = Config::load_with_env(Some(&config_path), &BTreeMap::new()).expect("loads");
    assert_eq!(config.workspace_dir(), workspace);
    assert_eq!(config.providers["openai"].api_key, None);
    assert_eq!(
        config.providers["openai"].api_base.as_deref(),
        Some("https://api.openai.com/v1")
    );
    assert_eq!(config.api.port, 8900);
    // A random management token, owner-only, so the inbox works from the first run.
    let token = report
        .management_token
        .clone()
        .expect("a token for a new config");
    assert!(token.len() >= 40, "{token}");
    assert_eq!(config.api.management_token.as_deref(), Some(token.as_str()));
    let again = onboard(&dir.path().join("other/config.json"), &workspace, false)
        .expect("onboard again")
        .management_token;
    assert_ne!(
        again.as_deref(),
        Some(token.as_str()),
        "each config gets its own"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // With the key in the environment, it is picked up.
    let env = BTreeMap::from([("OPENAI_API_KEY".to_owned(), "sk-test".to_owned())]);
    let config = Config::load_with_env(Some(&config_path), &env).expect("loads");
    assert_eq!(
        config.providers["openai"].api_key.as_deref(),
        Some("sk-test")
    );
}

#[test]
fn onboard_keeps_existing_files_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.json");
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    std::fs::write(&config_path, "{ \"api\": { \"port\": 1234 } }").expect("write");
    std::fs::write(workspace.join("SOUL.md"), "Mine.").expect("write");

    let report = onboard(&config_path, &workspace, false).expect("onboard");
    assert_eq!(
        report.kept,
        [config_path.clone(), workspace.join("SOUL.md")]
    );
    assert_eq!(report.written.len(), 4);
    assert_eq!(
        std::fs::read_to_string(workspace.join("SOUL.md")).expect("read"),
        "Mine."
    );
    let config = Config::load_with_env(Some(&config_path), &BTreeMap::new()).expect("loads");
    assert_eq!(config.api.port, 1234);

    let report = onboard(&config_path, &workspace, true).expect("onboard --force");
    assert!(report.kept.is_empty());
    assert_eq!(report.written, all_paths(&config_path, &workspace));
    assert_ne!(
        std::fs::read_to_string(workspace.join("SOUL.md")).expect("read"),
        "Mine."
    );
    let config = Config::load_with_env(Some(&config_path), &BTreeMap::new()).expect("loads");
    assert_eq!(config.api.port, 8900);
    assert_no_temp_files(dir.path());
}

#[test]
fn a_workspace_outside_the_config_dir_is_named_in_full() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("etc/config.json");
    // A `${` in a path is data, not a reference to a variable.
    let workspace = dir.path().join("srv/agent ${x}");
    onboard(&config_path, &workspace, false).expect("onboard");
    let config = Config::load_with_env(Some(&config_path), &BTreeMap::new()).expect("loads");
    assert_eq!(config.workspace_dir(), workspace);
    assert!(workspace.join("memory/MEMORY.md").is_file());
}

#[test]
fn a_write_failure_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A file where a directory must go.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").expect("write");
    let config_path = blocker.join("config.json");
    let err = onboard(&config_path, &dir.path().join("ws"), false).expect_err("cannot write");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot write {}", config_path.display())),
        "{err}"
    );
}
