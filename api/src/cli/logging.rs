//! Log setup for the CLI: to stderr, so stdout carries only the command's output.

use facio_services::config::{LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over `logging.level`;
/// `quiet_default` is used when neither says anything (interactive commands).
pub fn init(config: &LoggingConfig, quiet_default: Option<&str>) {
    let level = match (std::env::var("RUST_LOG").ok(), quiet_default) {
        (Some(env), _) => env,
        (None, Some(quiet)) => quiet.to_owned(),
        (None, None) => config.level.clone(),
    };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests running commands in-process) is harmless; ignore it.
    let _ = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
