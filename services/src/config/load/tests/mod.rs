//! Loading as a user meets it: a file on disk, an explicit environment, the one-line
//! error they would read.

mod files;
mod interpolation;
mod keys;
mod overrides;
mod settings;
mod syntax;
mod validation;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{Config, ConfigError};

/// A config file in a fresh directory.
struct Fixture {
    dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture(text: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    std::fs::write(&path, text).expect("write config");
    Fixture { dir, path }
}

fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Loads `text` as a config file with exactly `vars` as the environment.
fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let f = fixture(text);
    Config::load_with_env(Some(&f.path), &env(vars))
}

/// The one-line message a failed load shows.
fn load_err(text: &str, vars: &[(&str, &str)]) -> String {
    let message = match load(text, vars) {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(err) => err.to_string(),
    };
    assert!(
        !message.contains('\n'),
        "message must be one line: {message}"
    );
    message
}
