//! OpenTelemetry: trace context across every hop the runtime owns, the attribute
//! names of the GenAI semantic conventions, and the runtime's metric instruments.
//!
//! The process (the `facio` binary) installs the exporters and the propagator; this
//! module only speaks the `opentelemetry` API, so with nothing installed every call
//! here is a no-op.

pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use metrics::metrics;

/// Attribute and span names (GenAI semantic conventions, `gen_ai_latest_experimental`).
pub mod names {
    pub const OPERATION: &str = "gen_ai.operation.name";
    pub const PROVIDER: &str = "gen_ai.provider.name";
    pub const AGENT_NAME: &str = "gen_ai.agent.name";
    pub const CONVERSATION: &str = "gen_ai.conversation.id";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    pub const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub const FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
    pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    pub const TOOL_TYPE: &str = "gen_ai.tool.type";
    pub const TOOL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
    pub const TOOL_RESULT: &str = "gen_ai.tool.call.result";
    pub const TOKEN_TYPE: &str = "gen_ai.token.type";
    pub const ERROR_TYPE: &str = "error.type";
    pub const TENANT: &str = "facio.tenant";
    pub const RUN: &str = "facio.run.id";
    pub const REVIEW: &str = "facio.review.id";
    pub const REVIEW_TYPE: &str = "facio.review.type";
    pub const REVIEW_OUTCOME: &str = "facio.review.outcome";
    pub const REVIEW_WAIT: &str = "facio.review.wait_s";
    pub const POLICY_DECISION: &str = "facio.policy.decision";
    pub const TOOL_OUTCOME: &str = "facio.tool.outcome";
    pub const TURN_STOP: &str = "facio.turn.stop";
    pub const RUN_RESUMED: &str = "facio.run.resumed";
    pub const RISK_TIER: &str = "facio.tool.risk_tier";
}

static CAPTURE_CONTENT: AtomicBool = AtomicBool::new(false);
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (the process says so at start); work done only for a
/// span (an extra read) is skipped otherwise.
pub fn tracing_on() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Sets [`tracing_on`].
pub fn set_tracing(on: bool) {
    TRACING.store(on, Ordering::Relaxed);
}

static METRICS_EXPORTED: AtomicBool = AtomicBool::new(false);

/// Whether metrics go out over OTLP (then the gauges are refreshed on a timer, not
/// only when `/metrics` is scraped).
pub fn metrics_exported() -> bool {
    METRICS_EXPORTED.load(Ordering::Relaxed)
}

/// Sets [`metrics_exported`].
pub fn set_metrics_exported(on: bool) {
    METRICS_EXPORTED.store(on, Ordering::Relaxed);
}

/// Records a span that already happened (a human's wait, known once it is over):
/// from `start` to `end`, in the trace `parent` names (a new one without it).
/// Returns its context, for links.
pub fn past_span(
    name: String,
    parent: Option<&str>,
    start: std::time::SystemTime,
    end: std::time::SystemTime,
    attributes: Vec<opentelemetry::KeyValue>,
) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{Span as _, Tracer as _};
    if !tracing_on() {
        return None;
    }
    let tracer = opentelemetry::global::tracer("facio");
    let parent = parent.map(context_of).unwrap_or_default();
    let mut span = tracer
        .span_builder(name)
        .with_kind(opentelemetry::trace::SpanKind::Internal)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(&tracer, &parent);
    let context = span.span_context().clone();
    span.end_with_timestamp(end);
    Some(context)
}

/// Links the current span to `context` (a span it follows from).
pub fn link_current(context: opentelemetry::trace::SpanContext) {
    tracing::Span::current().add_link(context);
}

/// Whether message content goes on spans (`telemetry.captureContent`; set once at
/// start). Content is redacted of every known credential before it is attached.
pub fn capture_content() -> bool {
    CAPTURE_CONTENT.load(Ordering::Relaxed)
}

/// Sets [`capture_content`] (the process does so at start).
pub fn set_capture_content(on: bool) {
    CAPTURE_CONTENT.store(on, Ordering::Relaxed);
}

/// `text` with every credential the process knows replaced, cut to a size a span
/// attribute can carry.
pub fn content(text: &str) -> String {
    const MAX: usize = 8 * 1024;
    let redacted = crate::vault::redact_known(text).unwrap_or_else(|| text.to_owned());
    if redacted.len() <= MAX {
        return redacted;
    }
    let mut end = MAX;
    while !redacted.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &redacted[..end])
}

/// Sets an attribute on `span`'s OpenTelemetry span (nothing without an exporter).
pub fn set(span: &tracing::Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    span.set_attribute(key, value);
}

/// Sets the response model and the token usage (`gen_ai.usage.*`) on `span`.
pub fn set_usage(span: &tracing::Span, model: &str, usage: &crate::domain::Usage) {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    set(span, names::RESPONSE_MODEL, model.to_owned());
    set(span, names::INPUT_TOKENS, count(usage.prompt_tokens));
    set(span, names::OUTPUT_TOKENS, count(usage.completion_tokens));
}

/// Sets `gen_ai.response.finish_reasons` (a string array) on `span`.
pub fn set_finish_reasons<'a>(span: &tracing::Span, reasons: impl IntoIterator<Item = &'a str>) {
    let reasons = reasons.into_iter().map(|r| r.to_owned().into()).collect();
    set(
        span,
        names::FINISH_REASONS,
        opentelemetry::Value::Array(opentelemetry::Array::String(reasons)),
    );
}

/// Adds an event to the current span's OpenTelemetry span.
pub fn event(name: &'static str, attributes: Vec<opentelemetry::KeyValue>) {
    tracing::Span::current().add_event(name, attributes);
}

/// Marks `span` failed with a low-cardinality `error.type` (never a message that
/// could carry user data).
pub fn set_error(span: &tracing::Span, error_type: &str) {
    span.set_attribute(names::ERROR_TYPE, error_type.to_owned());
    span.set_status(opentelemetry::trace::Status::error(error_type.to_owned()));
}

/// The W3C `traceparent` of the current span, when it is being traced.
pub fn traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut fields = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut fields));
    fields.remove("traceparent")
}

/// The context a `traceparent` names (an empty one for a malformed value).
pub fn context_of(traceparent: &str) -> opentelemetry::Context {
    let fields =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&fields))
}

/// Makes `span` a child of the trace `traceparent` names (a stream entry's); a
/// malformed value leaves it where it is.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        continue_from(span, context_of(traceparent));
    }
}

/// Makes `span` a child of the trace incoming HTTP headers name (`traceparent`);
/// without one it stays where it is.
pub fn continue_from_headers(span: &tracing::Span, headers: &reqwest::header::HeaderMap) {
    continue_from(
        span,
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers))),
    );
}

fn continue_from(span: &tracing::Span, cx: opentelemetry::Context) {
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The current span's trace context as outgoing HTTP headers (none when it is not
/// traced).
pub fn trace_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut HeaderInjector(&mut headers));
        });
    }
    headers
}

struct HeaderInjector<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(key.as_bytes()),
            reqwest::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a reqwest::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(reqwest::header::HeaderName::as_str)
            .collect()
    }
}
