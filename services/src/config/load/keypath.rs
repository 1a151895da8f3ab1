//! Key paths as users read them: `agents.defaults.model`, `tools.exec.denyPatterns[2]`.
//! The same spelling `serde_path_to_error` uses, so every error names keys one way.

/// Joins canonical segments with dots.
pub(super) fn join_all(segments: &[String]) -> String {
    segments.join(".")
}

/// `parent.key`, or `key` at the top.
pub(super) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(super) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Whether `key` is `ancestor` or lies below it.
pub(super) fn is_within(key: &str, ancestor: &str) -> bool {
    key.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}
