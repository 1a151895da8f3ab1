//! Building a workspace binary once per test process, into the test's own target dir.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, bail};

/// (package, bin) → path of what this test process already built.
static BUILT: Mutex<Vec<(String, String, PathBuf)>> = Mutex::new(Vec::new());

/// Builds `bin` of `package` with cargo (same profile and target dir as the running
/// test) and returns its path.
pub fn workspace_binary(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((.., path)) = built.iter().find(|(p, b, _)| p == package && b == bin) {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("locate the test executable")?;
    // target/<profile>/deps/<test> → target/<profile> and target
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable is not under target/<profile>/deps")?
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .context("no target directory above the profile directory")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", target_dir);
    if release {
        command.arg("--release");
    }
    let output = command.output().context("run cargo build")?;
    if !output.status.success() {
        bail!(
            "cargo build -p {package} --bin {bin} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = profile_dir.join(bin);
    built.push((package.to_owned(), bin.to_owned(), path.clone()));
    Ok(path)
}

#[cfg(test)]
mod tests;
