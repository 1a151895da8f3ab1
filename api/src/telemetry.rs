//! The process's OpenTelemetry pipeline: spans to OTLP/HTTP (protobuf) when an
//! endpoint is configured, metrics to OTLP on the same terms and always to the
//! Prometheus text of `GET /metrics`, W3C trace context as the propagator.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use facio_services::config::TelemetryConfig;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

/// Why telemetry could not start (a bad endpoint or header, named).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry: cannot build the OTLP {signal} exporter: {reason}")]
    Exporter {
        signal: &'static str,
        reason: String,
    },
    #[error("telemetry.sampleRatio must be between 0 and 1, not {0}")]
    SampleRatio(f64),
}

/// What [`init`] installed; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: SdkMeterProvider,
}

/// The reader `GET /metrics` collects from (installed by [`init`]).
static PROMETHEUS: OnceLock<Arc<ManualReader>> = OnceLock::new();

impl Telemetry {
    /// The tracer spans go to, when an exporter is configured.
    pub fn tracer(&self) -> Option<SdkTracer> {
        self.tracer.as_ref().map(|p| p.tracer("facio"))
    }

    /// Exports what is still buffered and stops the exporters.
    pub fn shutdown(&self) {
        if let Some(tracer) = &self.tracer
            && let Err(e) = tracer.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(error = %e, "flushing spans at shutdown");
        }
        if let Err(e) = self.meter.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::debug!(error = %e, "flushing metrics at shutdown");
        }
    }
}

/// Whether a variable is set to something.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether an OTLP endpoint is configured for `signal` (`TRACES`, `METRICS`).
fn exporting(config: &TelemetryConfig, signal: &str) -> bool {
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    let exporter_var = format!("OTEL_{signal}_EXPORTER");
    if var(&exporter_var).is_some_and(|v| v.eq_ignore_ascii_case("none")) {
        return false;
    }
    config.otlp_endpoint.is_some()
        || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || var(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")).is_some()
}

/// Installs the propagator, the meter provider (always: `/metrics` reads it) and,
/// when an endpoint is configured, the OTLP exporters. Header values are made known
/// to the log redactor.
pub fn init(config: &TelemetryConfig, node: &str) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    facio_services::telemetry::set_capture_content(config.capture_content);
    if let Some(ratio) = config.sample_ratio
        && !(0.0..=1.0).contains(&ratio)
    {
        return Err(TelemetryError::SampleRatio(ratio));
    }
    for (_, value) in config.headers.iter() {
        facio_services::vault::remember(value);
    }
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    ] {
        if let Some(headers) = var(name) {
            for pair in headers.split(',') {
                if let Some((_, value)) = pair.split_once('=') {
                    facio_services::vault::remember(value.trim());
                }
            }
        }
    }
    let service = config
        .service_name
        .clone()
        .or_else(|| var("OTEL_SERVICE_NAME"))
        .unwrap_or_else(|| "facio".to_owned());
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            node.to_owned(),
        ))
        .build();
    let headers: std::collections::HashMap<String, String> = config
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let endpoint = |path: &str| {
        config
            .otlp_endpoint
            .as_ref()
            .map(|base| format!("{}/{path}", base.trim_end_matches('/')))
    };

    let tracer = if exporting(config, "TRACES") {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_headers(headers.clone());
        if let Some(url) = endpoint("v1/traces") {
            exporter = exporter.with_endpoint(url);
        }
        let exporter = exporter.build().map_err(|e| TelemetryError::Exporter {
            signal: "traces",
            reason: e.to_string(),
        })?;
        let mut builder = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.clone());
        if let Some(ratio) = config.sample_ratio {
            builder = builder.with_sampler(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(ratio),
            )));
        }
        let provider = builder.build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        facio_services::telemetry::set_tracing(true);
        Some(provider)
    } else {
        None
    };

    let prometheus = PROMETHEUS
        .get_or_init(|| Arc::new(ManualReader::builder().build()))
        .clone();
    let mut meter = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(Shared(prometheus));
    if exporting(config, "METRICS") {
        let mut exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_headers(headers);
        if let Some(url) = endpoint("v1/metrics") {
            exporter = exporter.with_endpoint(url);
        }
        let exporter = exporter.build().map_err(|e| TelemetryError::Exporter {
            signal: "metrics",
            reason: e.to_string(),
        })?;
        let interval = config
            .metrics_interval_s
            .map(Duration::from_secs)
            .or_else(|| {
                var("OTEL_METRIC_EXPORT_INTERVAL")
                    .and_then(|ms| ms.parse().ok())
                    .map(Duration::from_millis)
            })
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(1));
        let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
            .with_interval(interval)
            .build();
        meter = meter.with_reader(reader);
        facio_services::telemetry::set_metrics_exported(true);
    }
    let meter = meter.build();
    opentelemetry::global::set_meter_provider(meter.clone());
    Ok(Telemetry { tracer, meter })
}

/// The `/metrics` reader, shared between the meter provider and the handler.
#[derive(Debug)]
struct Shared(Arc<ManualReader>);

impl MetricReader for Shared {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Everything the meter provider holds, as Prometheus text (exposition format
/// 0.0.4); empty when telemetry was not started.
pub fn prometheus_text() -> String {
    let Some(reader) = PROMETHEUS.get() else {
        return String::new();
    };
    let mut collected = ResourceMetrics::default();
    if let Err(e) = reader.collect(&mut collected) {
        tracing::debug!(error = %e, "collecting metrics");
        return String::new();
    }
    crate::prometheus::render(&collected)
}
