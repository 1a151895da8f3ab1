//! Log setup for the CLI: to stderr, so stdout carries only the command's output, with
//! every secret the process knows redacted from every line.

use std::io::Write;

use facio_services::config::{LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(|| Redacting(std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter).with(Keep);
    // A second init (tests running commands in-process) is harmless; ignore it.
    let _ = match config.format {
        LogFormat::Json => registry.with(fmt.json()).try_init(),
        LogFormat::Text => registry.with(fmt).try_init(),
    };
}

/// Keeps each record (that passed the filter) for the agent's `read_logs`, tagged with
/// the tenant and run its fields or its spans name (see `facio_services::logs`).
struct Keep;

/// The `tenant` and `run` a span names.
#[derive(Default, Clone)]
struct Names {
    tenant: Option<String>,
    run: Option<String>,
    session: Option<String>,
}

/// Collects an event's or span's fields: the message, `tenant`, `run`, the rest.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<String>,
    names: Names,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "tenant" => self.names.tenant = Some(value.to_owned()),
            "run" | "run_id" => self.names.run = Some(value.to_owned()),
            "session" | "session_key" => self.names.session = Some(value.to_owned()),
            name => self.rest.push(format!("{name}={value}")),
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for Keep
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields.names);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut names = fields.names;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(outer) = span.extensions().get::<Names>() {
                    names.tenant = names.tenant.or_else(|| outer.tenant.clone());
                    names.run = names.run.or_else(|| outer.run.clone());
                    names.session = names.session.or_else(|| outer.session.clone());
                }
            }
        }
        let mut message = fields.message;
        for field in fields.rest {
            message.push(' ');
            message.push_str(&field);
        }
        let meta = event.metadata();
        facio_services::logs::keep(facio_services::logs::LogRecord {
            at: chrono::Utc::now(),
            level: meta.level().as_str().to_ascii_lowercase(),
            target: meta.target().to_owned(),
            message,
            tenant: names.tenant,
            run: names.run,
            session: names.session,
        });
    }
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
