//! The runtime's metric instruments, made once from the global meter provider (the
//! process installs it before anything records; `GET /metrics` reads it, and OTLP
//! exports it when an endpoint is set).
//!
//! Names follow the GenAI semantic conventions where they define one
//! (`gen_ai.client.*`, with the convention's units and bucket boundaries) and sit
//! under `facio.` otherwise. `facio.tenant` is on the series whose count is bounded
//! by the number of tenants; never a session, run or review id.

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter};

/// The convention's boundaries for `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];

/// The convention's boundaries for `gen_ai.client.operation.duration` (seconds).
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Short operations (store commits, runtime overhead), seconds.
const FAST_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The HTTP conventions' boundaries for `http.server.request.duration` (seconds).
const HTTP_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Human decisions, seconds (a minute to a week).
const REVIEW_BUCKETS: [f64; 12] = [
    1.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0, 604_800.0,
];

/// Every instrument the runtime records into.
pub struct Metrics {
    /// `gen_ai.client.token.usage` {token}: input and output tokens per model call.
    pub token_usage: Histogram<u64>,
    /// `gen_ai.client.operation.duration` s: one model call, retries included.
    pub operation_duration: Histogram<f64>,
    /// `gen_ai.execute_tool.duration` s: one tool call's execution.
    pub tool_duration: Histogram<f64>,
    /// `facio.tool.calls` {call}: tool calls by tool and outcome.
    pub tool_calls: Counter<u64>,
    /// `facio.tool.errors` {call}: tool calls that failed, by tool.
    pub tool_errors: Counter<u64>,
    /// `facio.reviews.opened` {review}: by type.
    pub reviews_opened: Counter<u64>,
    /// `facio.reviews.closed` {review}: by type and outcome (approved, rejected,
    /// answered, expired, cancelled).
    pub reviews_closed: Counter<u64>,
    /// `facio.review.decision.duration` s: from opening to the human's decision.
    pub review_latency: Histogram<f64>,
    /// `facio.turn.duration` s: a turn from acceptance to its end, by how it ended.
    pub turn_duration: Histogram<f64>,
    /// `facio.turn.overhead` s: a turn's time not spent in the model or in tools.
    pub turn_overhead: Histogram<f64>,
    /// `facio.sessions.passivated` {session}: session actors stopped while idle.
    pub passivations: Counter<u64>,
    /// `facio.lease.takeovers` {lease}: sessions taken from a holder that left the
    /// cluster, and running turns taken over at start-up recovery.
    pub lease_takeovers: Counter<u64>,
    /// `facio.rate_limit.rejections` {request}: requests refused by a rate limit.
    pub rate_limited: Counter<u64>,
    /// `facio.budget.stops` {turn}: turns stopped by a budget, by which.
    pub budget_stops: Counter<u64>,
    /// `facio.store.commit.duration` s: one store commit (a group of writes).
    pub store_commit: Histogram<f64>,
    /// `http.server.request.duration` s: by method, route and status.
    pub http_duration: Histogram<f64>,
    /// `facio.model.cost_usd`: what model calls cost by the configured prices.
    pub model_cost: Counter<f64>,
    /// `facio.sessions.active` {session}: session actors alive on this node.
    pub active_sessions: Gauge<u64>,
    /// `facio.reviews.pending` {review}: reviews waiting for a human (all nodes).
    pub pending_reviews: Gauge<u64>,
    /// `facio.store.queue_depth` {write}: writes waiting for the store's writer.
    pub store_queue: Gauge<u64>,
    /// `facio.turns.queued` {turn}: turns waiting behind a busy session on this node.
    pub queued_turns: UpDownCounter<i64>,
    /// `facio.inbox.backlog` {entry}: this node's inbox stream entries not yet handled
    /// (cluster mode).
    pub inbox_backlog: Gauge<u64>,
}

/// The instruments (made at the first call, from the global meter provider).
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new(&opentelemetry::global::meter("facio")))
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        let seconds = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(buckets.to_vec())
                .build()
        };
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build()
        };
        Self {
            token_usage: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Number of input and output tokens used")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            operation_duration: seconds(
                "gen_ai.client.operation.duration",
                "GenAI operation duration",
                &DURATION_BUCKETS,
            ),
            tool_duration: seconds(
                "gen_ai.execute_tool.duration",
                "Duration of tool executions",
                &DURATION_BUCKETS,
            ),
            tool_calls: counter("facio.tool.calls", "{call}", "Tool calls by outcome"),
            tool_errors: counter("facio.tool.errors", "{call}", "Tool calls that failed"),
            reviews_opened: counter("facio.reviews.opened", "{review}", "Human reviews opened"),
            reviews_closed: counter(
                "facio.reviews.closed",
                "{review}",
                "Human reviews closed, by outcome",
            ),
            review_latency: seconds(
                "facio.review.decision.duration",
                "Time from a review's opening to its decision",
                &REVIEW_BUCKETS,
            ),
            turn_duration: seconds(
                "facio.turn.duration",
                "Agent turn duration",
                &DURATION_BUCKETS,
            ),
            turn_overhead: seconds(
                "facio.turn.overhead",
                "Turn time spent outside the model and the tools",
                &FAST_BUCKETS,
            ),
            passivations: counter(
                "facio.sessions.passivated",
                "{session}",
                "Idle session actors stopped",
            ),
            lease_takeovers: counter(
                "facio.lease.takeovers",
                "{lease}",
                "Sessions and running turns taken over from a holder that is gone",
            ),
            rate_limited: counter(
                "facio.rate_limit.rejections",
                "{request}",
                "Requests refused by a rate limit",
            ),
            budget_stops: counter("facio.budget.stops", "{turn}", "Turns stopped by a budget"),
            store_commit: seconds(
                "facio.store.commit.duration",
                "Store commit duration",
                &FAST_BUCKETS,
            ),
            http_duration: seconds(
                "http.server.request.duration",
                "Duration of HTTP server requests",
                &HTTP_BUCKETS,
            ),
            model_cost: meter
                .f64_counter("facio.model.cost_usd")
                .with_description("Cost of model calls in US dollars, by the configured prices")
                .build(),
            active_sessions: meter
                .u64_gauge("facio.sessions.active")
                .with_unit("{session}")
                .with_description("Session actors alive on this node")
                .build(),
            pending_reviews: meter
                .u64_gauge("facio.reviews.pending")
                .with_unit("{review}")
                .with_description("Reviews waiting for a human")
                .build(),
            store_queue: meter
                .u64_gauge("facio.store.queue_depth")
                .with_unit("{write}")
                .with_description("Writes waiting for the store")
                .build(),
            queued_turns: meter
                .i64_up_down_counter("facio.turns.queued")
                .with_unit("{turn}")
                .with_description("Turns waiting behind a busy session on this node")
                .build(),
            inbox_backlog: meter
                .u64_gauge("facio.inbox.backlog")
                .with_unit("{entry}")
                .with_description("Entries of this node's inbox stream not yet handled")
                .build(),
        }
    }
}

/// `facio.tenant` as an attribute.
pub fn tenant(tenant: &crate::domain::TenantId) -> KeyValue {
    KeyValue::new(super::names::TENANT, tenant.to_string())
}
