//! `telemetry`: OpenTelemetry traces and metrics over OTLP/HTTP (protobuf).
//!
//! Nothing is exported unless an endpoint is set here or through the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` variables; `OTEL_SDK_DISABLED=true` switches
//! exporting off whatever is set. The Prometheus endpoint `GET /metrics` works either way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `telemetry` area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base URL, e.g. `http://collector:4318` (traces go to `/v1/traces`,
    /// metrics to `/v1/metrics`). Unset: the `OTEL_EXPORTER_OTLP_*ENDPOINT` variables.
    pub otlp_endpoint: Option<String>,
    /// Extra headers on every export (e.g. an API key of the collector); added to
    /// `OTEL_EXPORTER_OTLP_HEADERS`. Their values never appear in logs.
    pub headers: BTreeMap<String, String>,
    /// `service.name` of the resource. Unset: `OTEL_SERVICE_NAME`, else `facio`.
    pub service_name: Option<String>,
    /// Share of new traces kept, 0.0–1.0 (a request that arrives with a sampled
    /// `traceparent` follows its parent). Unset: `OTEL_TRACES_SAMPLER` /
    /// `OTEL_TRACES_SAMPLER_ARG`, else every trace.
    pub sample_ratio: Option<f64>,
    /// Put message content (`gen_ai.input.messages`, `gen_ai.output.messages`, tool
    /// arguments and results) on the spans. Off by default; credentials are redacted
    /// from it when on.
    pub capture_content: bool,
    /// Seconds between two metric exports over OTLP. Default 60 (or
    /// `OTEL_METRIC_EXPORT_INTERVAL` in milliseconds).
    pub metrics_interval_s: Option<u64>,
}
