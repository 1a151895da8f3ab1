use std::path::Path;

use super::{env, fixture, load};
use crate::config::{Config, ConfigError};

#[test]
fn a_missing_explicit_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.json");
    let err = Config::load_with_env(Some(&path), &env(&[])).expect_err("missing");
    assert!(matches!(&err, ConfigError::NotFound { path: p } if p == &path));
    assert_eq!(
        err.to_string(),
        format!("config {}: file not found", path.display())
    );
}

#[test]
fn facio_config_names_the_file_and_must_exist() {
    let f = fixture(r#"{ "api": { "port": 9300 } }"#);
    let path = f.path.display().to_string();
    let config = Config::load_with_env(None, &env(&[("FACIO_CONFIG", &path)])).expect("loads");
    assert_eq!(config.api.port, 9300);

    let missing = f.dir.path().join("other.json").display().to_string();
    let err =
        Config::load_with_env(None, &env(&[("FACIO_CONFIG", &missing)])).expect_err("missing");
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
}

#[test]
fn a_missing_default_file_means_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().display().to_string();
    let config = Config::load_with_env(None, &env(&[("FACIO_DATA_DIR", &data)])).expect("loads");
    // All defaults, and no file means no base directory; API changes would be kept
    // beside where the file would be.
    assert_eq!(
        config.settings_file.as_deref(),
        Some(dir.path().join("settings.json").as_path())
    );
    assert_eq!(
        Config {
            settings_file: None,
            ..config
        },
        Config::default()
    );
}

#[test]
fn the_default_file_is_read_from_the_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("config.json"),
        r#"{ "api": { "port": 9400 } }"#,
    )
    .expect("write");
    let data = dir.path().display().to_string();
    let config = Config::load_with_env(None, &env(&[("FACIO_DATA_DIR", &data)])).expect("loads");
    assert_eq!(config.api.port, 9400);
    assert_eq!(config.base_dir.as_deref(), Some(dir.path()));
}

#[test]
fn relative_paths_resolve_next_to_the_config_file() {
    let f = fixture(
        r#"{ "agents": { "defaults": { "workspace": "./ws" } }, "storage": { "dataDir": "state" },
             "tools": { "exec": { "hidePaths": ["state/master.key", "/etc/facio"] } } }"#,
    );
    let config = Config::load_with_env(Some(&f.path), &env(&[])).expect("loads");
    assert_eq!(
        config.tools.exec.hide_paths,
        [f.dir.path().join("state/master.key"), "/etc/facio".into()]
    );
    assert_eq!(config.base_dir.as_deref(), Some(f.dir.path()));
    assert_eq!(config.workspace_dir(), f.dir.path().join("ws"));
    assert_eq!(config.data_dir(), f.dir.path().join("state"));
    assert_eq!(
        config.storage_url(),
        format!("sqlite://{}", f.dir.path().join("state/facio.db").display())
    );
}

#[test]
fn absolute_and_home_paths_are_kept_or_expanded() {
    let config = load(
        r#"{ "agents": { "defaults": { "workspace": "~/agent" } }, "storage": { "dataDir": "/srv/facio" } }"#,
        &[("HOME", "/home/ada")],
    )
    .expect("loads");
    assert_eq!(config.workspace_dir(), Path::new("/home/ada/agent"));
    assert_eq!(config.data_dir(), Path::new("/srv/facio"));
    // Without a workspace setting it lives in the data dir.
    let config = load(r#"{ "storage": { "dataDir": "/srv/facio" } }"#, &[]).expect("loads");
    assert_eq!(config.workspace_dir(), Path::new("/srv/facio/workspace"));
}

#[test]
fn an_unreadable_file_is_a_read_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory exists but cannot be read as a file.
    let err = Config::load_with_env(Some(dir.path()), &env(&[])).expect_err("a directory");
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}
