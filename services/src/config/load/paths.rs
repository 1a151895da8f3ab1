//! Relative paths in the config mean "next to the config file", so a config and its
//! workspace can move together; `~/` means the home directory.

use std::path::{Component, Path, PathBuf};

use crate::config::Config;

/// Resolves `agents.defaults.workspace`, `storage.dataDir` and `tools.exec.hidePaths`
/// against `base_dir` (the config file's directory, when there is one) and `~` against
/// `home`.
pub(super) fn resolve(config: &mut Config, base_dir: Option<&Path>, home: Option<&Path>) {
    for path in [
        &mut config.agents.defaults.workspace,
        &mut config.storage.data_dir,
    ]
    .into_iter()
    .flatten()
    .chain(config.tools.exec.hide_paths.iter_mut())
    {
        *path = resolve_one(path, base_dir, home);
    }
}

fn resolve_one(path: &Path, base_dir: Option<&Path>, home: Option<&Path>) -> PathBuf {
    if let (Ok(rest), Some(home)) = (path.strip_prefix("~"), home) {
        return home.join(rest);
    }
    match base_dir {
        Some(base) if path.is_relative() => {
            // `./workspace` should read as `<base>/workspace`, not `<base>/./workspace`.
            let rest: PathBuf = path
                .components()
                .filter(|component| !matches!(component, Component::CurDir))
                .collect();
            base.join(rest)
        }
        _ => path.to_path_buf(),
    }
}
