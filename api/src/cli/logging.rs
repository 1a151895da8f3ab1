//! Log setup for the CLI: to stderr, so stdout carries only the command's output, with
//! every secret the process knows redacted from every line.

use std::io::Write;

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
    // Colour codes only for a person at a terminal: a file, a pipe or a log
    // collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(|| Redacting(std::io::stderr()));
    // A second init (tests running commands in-process) is harmless; ignore it.
    let _ = match config.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Writes log lines with known secrets replaced (see `facio_services::vault::remember`).
/// The formatter hands over one whole event per write, so a secret is never split
/// across two writes.
struct Redacting<W>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let redacted = std::str::from_utf8(buf)
            .ok()
            .and_then(facio_services::vault::redact_known);
        match redacted {
            Some(clean) => {
                self.0.write_all(clean.as_bytes())?;
                Ok(buf.len())
            }
            None => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_never_reach_the_log_output() {
        facio_services::vault::remember("log-writer-secret-987");
        let mut out = Redacting(Vec::new());
        out.write_all(b"calling with key log-writer-secret-987 now\n")
            .unwrap();
        out.write_all(b"an ordinary line\n").unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "calling with key [REDACTED] now\nan ordinary line\n"
        );
    }
}
