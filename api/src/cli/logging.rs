//! Log setup for the CLI: to stderr, so stdout carries only the command's output, with
//! every secret the process knows redacted from every line.

use std::io::Write;

use facio_services::config::{LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. `RUST_LOG` wins over `logging.level`;
/// `quiet_default` is used when neither says anything (interactive commands). With a
/// `tracer`, the runtime's spans also go to it, whatever the log level: traces do not
/// depend on how much is logged.
///
/// One global filter decides for every layer (no per-layer filters: with them, spans
/// of some requests went missing from both the log and the traces).
pub fn init(
    config: &LoggingConfig,
    quiet_default: Option<&str>,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) {
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
    let fmt = match config.format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let traced = tracer.is_some();
    let spans =
        tracer.map(|tracer| RuntimeSpans(tracing_opentelemetry::layer().with_tracer(tracer)));
    // A second init (tests running commands in-process) is harmless; ignore it.
    let _ = tracing_subscriber::registry()
        .with(Logged { filter, traced })
        .with(Keep)
        .with(fmt)
        .with(spans)
        .try_init();
}

/// Whether `meta` is one of the runtime's own spans at `info` or above: what goes to
/// the tracer.
fn runtime_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("facio") && *meta.level() <= tracing::Level::INFO
}

/// The global filter: what the log level lets through, and, when traces are
/// exported, the runtime's spans too (never more events: a log event's text is
/// redacted only by the log writer, so none becomes part of a span).
struct Logged {
    filter: EnvFilter,
    traced: bool,
}

impl<S> tracing_subscriber::Layer<S> for Logged
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.traced && runtime_span(meta) {
            return tracing::subscriber::Interest::always();
        }
        <EnvFilter as tracing_subscriber::Layer<S>>::register_callsite(&self.filter, meta)
    }

    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        (self.traced && runtime_span(meta))
            || <EnvFilter as tracing_subscriber::Layer<S>>::enabled(&self.filter, meta, ctx)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        let logged = <EnvFilter as tracing_subscriber::Layer<S>>::max_level_hint(&self.filter);
        if self.traced {
            logged.map(|hint| hint.max(tracing::level_filters::LevelFilter::INFO))
        } else {
            logged
        }
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.filter.on_new_span(attrs, id, ctx);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.filter.on_record(id, values, ctx);
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.filter.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.filter.on_exit(id, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.filter.on_close(id, ctx);
    }
}

/// The OpenTelemetry layer, shown only the runtime's own spans (no events, no
/// dependencies' spans: those become roots' children of nothing and are not sent).
struct RuntimeSpans<L>(L);

impl<S, L> tracing_subscriber::Layer<S> for RuntimeSpans<L>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    L: tracing_subscriber::Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if runtime_span(attrs.metadata()) {
            self.0.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if ctx.metadata(id).is_some_and(runtime_span) {
            self.0.on_record(id, values, ctx);
        }
    }

    fn on_follows_from(
        &self,
        id: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if ctx.metadata(id).is_some_and(runtime_span) {
            self.0.on_follows_from(id, follows, ctx);
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if ctx.metadata(id).is_some_and(runtime_span) {
            self.0.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if ctx.metadata(id).is_some_and(runtime_span) {
            self.0.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if ctx.metadata(&id).is_some_and(runtime_span) {
            self.0.on_close(id, ctx);
        }
    }

    fn on_id_change(
        &self,
        old: &tracing::span::Id,
        new: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.on_id_change(old, new, ctx);
    }

    // SAFETY: forwards the type lookup to the wrapped layer, so that
    // `OpenTelemetrySpanExt` finds the OpenTelemetry layer's context accessor
    // through this wrapper; a pointer is only handed out for the exact type asked
    // for, by the wrapped layer's own implementation, or for `Self`.
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: the wrapped layer upholds `downcast_raw`'s contract itself.
        unsafe { self.0.downcast_raw(id) }
    }
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
            "run" | "run_id" | "facio.run.id" => self.names.run = Some(value.to_owned()),
            "session" | "session_key" | "gen_ai.conversation.id" => {
                self.names.session = Some(value.to_owned());
            }
            "facio.tenant" => self.names.tenant = Some(value.to_owned()),
            "otel.name" | "otel.kind" => {}
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
