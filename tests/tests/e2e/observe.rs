//! Observability as an operator sees it: the spans of a turn arrive at an OTLP/HTTP
//! receiver (decoded with the OpenTelemetry protobuf definitions) named and linked as
//! the GenAI conventions say, `/metrics` is Prometheus text whose counters move by
//! what the turns did, and a stored credential appears in neither, even with message
//! content capture on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use facio_tests::model::Reply;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Gateway, PATIENCE, http, management};

const TOKEN: &str = "observe-management-token";
const METRICS_TOKEN: &str = "observe-metrics-token-9f2c";
const PLANTED: &str = "otel-Zq71-PLANTED-secret-44x";

/// One span as the receiver got it.
#[derive(Debug, Clone)]
pub(crate) struct SeenSpan {
    pub trace: String,
    pub id: String,
    pub parent: String,
    pub name: String,
    pub kind: i32,
    pub attributes: HashMap<String, String>,
    pub links: Vec<(String, String)>,
    /// `service.instance.id` of the node that sent it.
    pub node: String,
    /// `service.name` of the node that sent it.
    pub service: String,
    pub events: Vec<String>,
}

impl SeenSpan {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` and `/v1/metrics`.
pub(crate) struct Receiver {
    pub url: String,
    spans: Arc<Mutex<Vec<SeenSpan>>>,
    raw: Arc<Mutex<Vec<u8>>>,
    /// Names of the metrics received over OTLP.
    metrics: Arc<Mutex<Vec<String>>>,
    /// The headers of every export request.
    headers: Arc<Mutex<Vec<(String, String)>>>,
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| text(&Some(v.clone())))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<SeenSpan>>> = Arc::default();
        let raw: Arc<Mutex<Vec<u8>>> = Arc::default();
        let metrics: Arc<Mutex<Vec<String>>> = Arc::default();
        let headers: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (traces, bytes, seen_headers) = (spans.clone(), raw.clone(), headers.clone());
        let (seen_metrics, metric_bytes) = (metrics.clone(), raw.clone());
        let app = axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(
                    move |sent: axum::http::HeaderMap, body: axum::body::Bytes| {
                        let (traces, bytes, seen_headers) =
                            (traces.clone(), bytes.clone(), seen_headers.clone());
                        async move {
                            seen_headers
                                .lock()
                                .unwrap()
                                .extend(sent.iter().map(|(k, v)| {
                                    (
                                        k.as_str().to_owned(),
                                        v.to_str().unwrap_or_default().to_owned(),
                                    )
                                }));
                            bytes.lock().unwrap().extend_from_slice(&body);
                            let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref())
                            else {
                                return axum::http::StatusCode::BAD_REQUEST;
                            };
                            let mut seen = traces.lock().unwrap();
                            for resource in request.resource_spans {
                                let resource_attr = |key: &str| {
                                    resource
                                        .resource
                                        .as_ref()
                                        .and_then(|r| r.attributes.iter().find(|kv| kv.key == key))
                                        .map(|kv| text(&kv.value))
                                        .unwrap_or_default()
                                };
                                let node = resource_attr("service.instance.id");
                                let service = resource_attr("service.name");
                                for scope in resource.scope_spans {
                                    for span in scope.spans {
                                        seen.push(SeenSpan {
                                            trace: hex::encode(&span.trace_id),
                                            id: hex::encode(&span.span_id),
                                            parent: hex::encode(&span.parent_span_id),
                                            name: span.name.clone(),
                                            kind: span.kind,
                                            attributes: span
                                                .attributes
                                                .iter()
                                                .map(|kv| (kv.key.clone(), text(&kv.value)))
                                                .collect(),
                                            links: span
                                                .links
                                                .iter()
                                                .map(|l| {
                                                    (
                                                        hex::encode(&l.trace_id),
                                                        hex::encode(&l.span_id),
                                                    )
                                                })
                                                .collect(),
                                            node: node.clone(),
                                            service: service.clone(),
                                            events: span
                                                .events
                                                .iter()
                                                .map(|e| e.name.clone())
                                                .collect(),
                                        });
                                    }
                                }
                            }
                            axum::http::StatusCode::OK
                        }
                    },
                ),
            )
            .route(
                "/v1/metrics",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let (seen, bytes) = (seen_metrics.clone(), metric_bytes.clone());
                    async move {
                        bytes.lock().unwrap().extend_from_slice(&body);
                        let Ok(request) = ExportMetricsServiceRequest::decode(body.as_ref()) else {
                            return axum::http::StatusCode::BAD_REQUEST;
                        };
                        let mut seen = seen.lock().unwrap();
                        for resource in request.resource_metrics {
                            for scope in resource.scope_metrics {
                                seen.extend(scope.metrics.into_iter().map(|m| m.name));
                            }
                        }
                        axum::http::StatusCode::OK
                    }
                }),
            );
        // On a runtime of its own: a test's runtime may be busy (or blocked) while a
        // node exports, and an export that is not answered in time is dropped.
        let (bound, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the receiver");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let _ = bound.send(listener.local_addr().unwrap());
                let _ = axum::serve(listener, app).await;
            });
        });
        let address = address.recv().expect("the receiver's address");
        Receiver {
            url: format!("http://{address}"),
            spans,
            raw,
            metrics,
            headers,
        }
    }

    /// The value of header `name` on the export requests received so far.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn spans(&self) -> Vec<SeenSpan> {
        self.spans.lock().unwrap().clone()
    }

    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.lock().unwrap().clone()
    }

    pub fn raw(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Waits until `ready` holds for the spans received so far.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&[SeenSpan]) -> bool) -> Vec<SeenSpan> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let spans = self.spans();
            if ready(&spans) {
                return spans;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {what} within {PATIENCE:?}; received (name, node, trace, id, parent): {:#?}",
                spans
                    .iter()
                    .map(|s| (&s.name, &s.node, &s.trace[..8], &s.id, &s.parent))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn api(gateway: &Gateway, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    management(gateway, TOKEN, method, path, body).await
}

async fn scrape(gateway: &Gateway, token: Option<&str>) -> (u16, String) {
    let mut request = http().get(format!("{}/metrics", gateway.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of the sample `name{labels…}` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

fn one<'a>(spans: &'a [SeenSpan], what: &str, pick: impl Fn(&SeenSpan) -> bool) -> &'a SeenSpan {
    let found: Vec<&SeenSpan> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "exactly one {what} in {spans:#?}");
    found[0]
}

#[tokio::test]
async fn a_turn_with_an_approved_call_is_traced_and_counted_without_its_secret() {
    let receiver = Receiver::start().await;
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo ${credentials.PLANTED}"})),
        Reply::text("Echoed it."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/api/metricsToken", json!(METRICS_TOKEN));
    env.set(
        "/telemetry",
        json!({"otlpEndpoint": receiver.url, "captureContent": true, "serviceName": "facio-e2e",
            "metricsIntervalS": 1}),
    );
    let gateway = env.serve().await;

    let (status, body) = scrape(&gateway, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = scrape(&gateway, Some("wrong-token")).await;
    assert_eq!(status, 401, "{body}");
    let (status, before) = scrape(&gateway, Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{before}");

    let (status, created) = api(
        &gateway,
        Method::POST,
        "/credentials",
        Some(json!({"key": "PLANTED", "value": PLANTED})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/observe:one/messages?wait=20",
        Some(json!({"content": "Echo the planted value."})),
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "awaiting_review", "{run}");
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let review_id = run["reviews"][0].as_str().unwrap().to_owned();
    let (status, decided) = api(
        &gateway,
        Method::POST,
        &format!("/reviews/{review_id}/decide"),
        Some(json!({"response": {"selectedOption": "approve"}, "reviewer": "alice"})),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    let done = crate::hitl::finished_with(&gateway, TOKEN, &run_id).await;
    assert_eq!(done["status"], "completed", "{done}");

    // Both turns of the run (before and after the human) and the wait between them.
    let spans = receiver
        .wait_for("two invoke_agent spans and the review", |spans| {
            spans
                .iter()
                .filter(|s| s.name == "invoke_agent facio")
                .count()
                == 2
                && spans.iter().any(|s| s.name == "review approval")
                && spans.iter().filter(|s| s.name.starts_with("chat ")).count() == 2
        })
        .await;
    let by_id: HashMap<&str, &SeenSpan> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let parent_of = |span: &SeenSpan| by_id.get(span.parent.as_str()).copied();

    let first = one(&spans, "first turn", |s| {
        s.name == "invoke_agent facio" && s.attr("facio.run.resumed") == Some("false")
    });
    let resumed = one(&spans, "resumed turn", |s| {
        s.name == "invoke_agent facio" && s.attr("facio.run.resumed") == Some("true")
    });
    for turn in [first, resumed] {
        assert_eq!(turn.attr("gen_ai.operation.name"), Some("invoke_agent"));
        assert_eq!(turn.attr("gen_ai.agent.name"), Some("facio"));
        assert_eq!(turn.attr("gen_ai.provider.name"), Some("scripted"));
        assert_eq!(turn.attr("gen_ai.conversation.id"), Some("observe:one"));
        assert_eq!(turn.attr("facio.run.id"), Some(run_id.as_str()));
        assert_eq!(turn.attr("facio.tenant"), Some("default"));
        assert!(turn.attr("gen_ai.request.model").is_some(), "{turn:#?}");
        assert!(
            turn.attr("gen_ai.usage.input_tokens").unwrap_or("0") != "0",
            "{turn:#?}"
        );
        assert_eq!(turn.node, gateway_node(&spans));
    }
    assert_eq!(first.attr("facio.turn.stop"), Some("awaiting_review"));
    assert_eq!(resumed.attr("facio.turn.stop"), Some("answered"));
    assert_eq!(resumed.attr("gen_ai.response.finish_reasons"), Some("stop"));

    // The first turn runs in the request that sent the message; the resumed one in
    // the request that decided, each a child of its server span.
    let asked = parent_of(first).expect("the first turn has its request as parent");
    assert_eq!(asked.name, "POST /api/v1/sessions/{key}/messages");
    assert_eq!(asked.kind, 2, "SERVER");
    assert_eq!(asked.attr("http.response.status_code"), Some("200"));
    let decide = parent_of(resumed).expect("the resumed turn has the decision as parent");
    assert_eq!(decide.name, "POST /api/v1/reviews/{id}/decide");

    // Model calls: CLIENT spans under their turn.
    for chat in spans.iter().filter(|s| s.name.starts_with("chat ")) {
        assert_eq!(chat.kind, 3, "CLIENT: {chat:#?}");
        assert_eq!(chat.attr("gen_ai.operation.name"), Some("chat"));
        assert!(chat.attr("gen_ai.response.model").is_some(), "{chat:#?}");
        assert!(
            chat.attr("gen_ai.usage.output_tokens").is_some(),
            "{chat:#?}"
        );
        assert!(
            chat.attr("gen_ai.input.messages").is_some(),
            "content capture is on"
        );
        let turn = parent_of(chat).expect("a chat span has its turn as parent");
        assert!(turn.id == first.id || turn.id == resumed.id, "{chat:#?}");
    }

    // The call: asked for in the first turn, run after approval in the resumed one.
    let ask = one(&spans, "gated call", |s| {
        s.name == "execute_tool exec" && s.attr("facio.policy.decision") == Some("ask")
    });
    assert_eq!(ask.parent, first.id);
    assert_eq!(ask.attr("facio.tool.risk_tier"), Some("system-effect"));
    assert_eq!(ask.attr("gen_ai.tool.type"), Some("function"));
    let ran = one(&spans, "approved call", |s| {
        s.name == "execute_tool exec" && s.attr("facio.policy.decision") == Some("approved")
    });
    assert_eq!(ran.parent, resumed.id);
    assert_eq!(
        ran.attr("gen_ai.tool.call.id"),
        ask.attr("gen_ai.tool.call.id")
    );
    // The value reached the tool (its output held it) and was masked on the way out.
    let result = ran
        .attr("gen_ai.tool.call.result")
        .expect("content capture is on");
    assert!(result.contains("[REDACTED"), "{result}");

    // The human's wait: in the trace of the call that asked, linked from the turn that
    // went on after it.
    let wait = one(&spans, "review wait", |s| s.name == "review approval");
    assert_eq!(wait.parent, ask.id);
    assert_eq!(wait.trace, first.trace);
    assert_eq!(wait.attr("facio.review.id"), Some(review_id.as_str()));
    assert_eq!(wait.attr("facio.review.outcome"), Some("approved"));
    assert!(wait.attr("facio.review.wait_s").is_some());
    assert!(
        resumed
            .links
            .contains(&(wait.trace.clone(), wait.id.clone())),
        "the resumed turn links to the wait: {resumed:#?}"
    );

    // The metrics moved by what happened.
    let (status, after) = scrape(&gateway, Some(TOKEN)).await;
    assert_eq!(status, 200, "the management token scrapes too");
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(
        moved(
            "facio_tool_calls_total",
            &[("gen_ai_tool_name", "exec"), ("facio_tool_outcome", "ok")]
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(
            "facio_reviews_opened_total",
            &[("facio_review_type", "approval")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "facio_reviews_closed_total",
            &[("facio_review_outcome", "approved")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "gen_ai_client_operation_duration_seconds_count",
            &[("gen_ai_operation_name", "chat")]
        ),
        2.0
    );
    assert_eq!(
        moved(
            "gen_ai_client_token_usage_count",
            &[("gen_ai_token_type", "input")]
        ),
        2.0
    );
    assert!(
        moved(
            "gen_ai_client_token_usage_sum",
            &[("gen_ai_token_type", "input")]
        ) > 0.0
    );
    assert_eq!(
        moved(
            "facio_turn_duration_seconds_count",
            &[("facio_tenant", "default")]
        ),
        2.0
    );
    // The Prometheus client's own parser reads it, with the types the names say.
    let families = parse_with_prometheus_client(&after).await;
    let kind = |name: &str| {
        families
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["type"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        kind("gen_ai_client_operation_duration_seconds").as_deref(),
        Some("histogram")
    );
    assert_eq!(
        kind("gen_ai_client_token_usage").as_deref(),
        Some("histogram")
    );
    assert_eq!(kind("facio_tool_calls").as_deref(), Some("counter"));
    assert_eq!(kind("facio_reviews_pending").as_deref(), Some("gauge"));

    // The same instruments go out over OTLP (every second here).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !receiver
        .metric_names()
        .iter()
        .any(|n| n == "gen_ai.client.operation.duration")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no OTLP metrics export with gen_ai.client.operation.duration: {:?}",
            receiver.metric_names()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for name in [
        "gen_ai.client.token.usage",
        "facio.tool.calls",
        "facio.reviews.closed",
    ] {
        assert!(
            receiver.metric_names().iter().any(|n| n == name),
            "{name} not exported over OTLP"
        );
    }

    // The planted credential reached the tool (the call ran) but nothing observable.
    let raw = receiver.raw();
    assert!(!raw.is_empty());
    assert!(
        !raw.windows(PLANTED.len()).any(|w| w == PLANTED.as_bytes()),
        "the credential is in an exported span"
    );
    assert!(!after.contains(PLANTED), "the credential is in /metrics");
    assert!(
        !gateway.process.output().contains(PLANTED),
        "the credential is in the log"
    );
}

/// `text` parsed by the Prometheus client library (`tests/python/prometheus_parse.py`).
async fn parse_with_prometheus_client(text: &str) -> Vec<Value> {
    use tokio::io::AsyncWriteExt;
    let python = std::env::var("FACIO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/prometheus_parse.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics (install it with `pip install -r tests/python/requirements.txt`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the parser's JSON")
}

/// The node id the single gateway's spans name.
fn gateway_node(spans: &[SeenSpan]) -> String {
    spans
        .iter()
        .map(|s| s.node.clone())
        .find(|n| !n.is_empty())
        .unwrap_or_default()
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_metrics_need_a_token() {
    let receiver = Receiver::start().await;
    let mut env = Env::new(vec![Reply::text("Hello.")]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let gateway = env.serve().await;
    let response = gateway
        .post_chat(
            &json!({"model": "scripted-1", "messages": [{"role": "user", "content": "hi"}]}),
            Some("observe:quiet"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (status, body) = scrape(&gateway, Some("not-it")).await;
    assert_eq!(status, 401);
    let error: Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(
        error.to_string().contains("metrics token"),
        "the error names what is missing: {error}"
    );
    let (status, text) = scrape(&gateway, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(
        sample(&text, "facio_turn_duration_seconds_count", &[]) >= 1.0,
        "{text}"
    );
    // OTEL_SDK_DISABLED wins over an endpoint: the node exports nothing, not even
    // what it flushes on its way out.
    gateway.process.terminate().await.unwrap();
    gateway.process.wait_exit(PATIENCE).await.unwrap();
    let endpoint = receiver.url.clone();
    let off = env
        .serve_with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .await;
    let (status, _) = management(&off, TOKEN, Method::GET, "/sessions", None).await;
    assert_eq!(status, 200);
    off.process.terminate().await.unwrap();
    off.process.wait_exit(PATIENCE).await.unwrap();
    assert!(receiver.spans().is_empty(), "{:#?}", receiver.spans());
    assert!(receiver.raw().is_empty());
}

/// The standard `OTEL_*` variables configure the exporter when the config does not:
/// endpoint, headers and service name; the model provider's requests carry the trace.
#[tokio::test]
async fn otel_variables_configure_the_export_and_provider_calls_carry_the_trace() {
    let receiver = Receiver::start().await;
    let mut env = Env::new(vec![Reply::text("Hello.")]).await;
    env.set("/api/managementToken", json!(TOKEN));
    let endpoint = receiver.url.clone();
    let gateway = env
        .serve_with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-collector-key=otel-header-value-7",
            ),
            ("OTEL_SERVICE_NAME", "facio-from-env"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ])
        .await;
    let (status, run) = api(
        &gateway,
        Method::POST,
        "/sessions/observe:env/messages?wait=20",
        Some(json!({"content": "Hi."})),
    )
    .await;
    assert_eq!(
        (status, &run["status"]),
        (200, &json!("completed")),
        "{run}"
    );
    let spans = receiver
        .wait_for("the turn's chat span", |spans| {
            spans.iter().any(|s| s.name.starts_with("chat "))
        })
        .await;
    let chat = spans.iter().find(|s| s.name.starts_with("chat ")).unwrap();
    assert_eq!(chat.service, "facio-from-env");
    assert_eq!(
        receiver.header("x-collector-key").as_deref(),
        Some("otel-header-value-7")
    );
    // The request to the model continues the chat span's trace (W3C traceparent).
    let requests = env.model.requests();
    let traceparent = requests[0]
        .header("traceparent")
        .expect("the provider request carries traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], chat.trace, "{traceparent}");
    assert_eq!(
        parts[2], chat.id,
        "the model call's parent is the chat span"
    );
    assert!(
        !gateway.process.output().contains("otel-header-value-7"),
        "a header value is never logged"
    );
}

/// Failures are traced and counted too: a model call retried and one that failed,
/// a tool that failed, a budget that stopped a turn, a rate limit that refused.
#[tokio::test]
async fn retries_failures_budgets_and_limits_are_traced_and_counted() {
    let receiver = Receiver::start().await;
    let mut env = Env::new(vec![
        Reply::error(500, "upstream hiccup"),
        Reply::text("Recovered."),
        Reply::error(500, "upstream down"),
        Reply::error(500, "upstream down"),
        Reply::error(500, "upstream down"),
        Reply::tool_call("read_file", json!({"path": "no-such-file.txt"})),
        Reply::text("There is no such file."),
        Reply::tool_call("list_dir", json!({})),
        Reply::text("Listed."),
        Reply::text("Limited one."),
        Reply::text("Limited two."),
        Reply::text("Limited three."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set("/api/metricsToken", json!(METRICS_TOKEN));
    env.set("/agents/defaults/maxRetries", json!(2));
    env.set("/telemetry", json!({"otlpEndpoint": receiver.url}));
    let gateway = env.serve().await;
    let (_, before) = scrape(&gateway, Some(METRICS_TOKEN)).await;
    let send = |session: &'static str| {
        let gateway = &gateway;
        async move {
            api(
                gateway,
                Method::POST,
                &format!("/sessions/{session}/messages?wait=30"),
                Some(json!({"content": "Go."})),
            )
            .await
        }
    };

    let (status, retried) = send("observe:retried").await;
    assert_eq!(
        (status, &retried["status"]),
        (200, &json!("completed")),
        "{retried}"
    );
    let (_, failed) = send("observe:failed").await;
    assert_ne!(failed["status"], "completed", "{failed}");
    let (_, tool) = send("observe:tool").await;
    assert_eq!(tool["status"], "completed", "{tool}");
    let budget = json!({"tenant": {"tokensPerRun": 1}});
    let (status, _) = api(&gateway, Method::PATCH, "/settings", Some(budget)).await;
    assert_eq!(status, 200);
    let (_, stopped) = send("observe:budget").await;
    let said = stopped["content"].as_str().unwrap_or_default();
    assert!(said.contains("budget"), "{stopped}");
    let limits = json!({"tenant": {"tokensPerRun": null, "requestsPerMinute": 1}});
    let (status, _) = api(&gateway, Method::PATCH, "/settings", Some(limits)).await;
    assert_eq!(status, 200);
    let mut refused = 0.0;
    for _ in 0..3 {
        let response = gateway
            .post_chat(
                &json!({"model": "scripted-1", "messages": [{"role": "user", "content": "hi"}]}),
                Some("observe:limited"),
            )
            .await;
        if response.status() == 429 {
            refused += 1.0;
        }
    }
    assert!(refused >= 1.0, "one request a minute: some were refused");

    let (_, after) = scrape(&gateway, Some(METRICS_TOKEN)).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let tenant = ("facio_tenant", "default");
    assert_eq!(
        moved(
            "facio_tool_errors_total",
            &[("gen_ai_tool_name", "read_file"), tenant]
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(
            "facio_tool_calls_total",
            &[
                ("gen_ai_tool_name", "read_file"),
                ("facio_tool_outcome", "error"),
                tenant
            ]
        ),
        1.0
    );
    assert_eq!(moved("facio_budget_stops_total", &[tenant]), 1.0, "{after}");
    assert_eq!(
        moved(
            "facio_rate_limit_rejections_total",
            &[tenant, ("facio_limit", "tenant")]
        ),
        refused,
        "{after}"
    );
    let failures = |text: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("gen_ai_client_operation_duration_seconds_count{")
                    && l.contains("error_type=\"")
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(
        failures(&after) - failures(&before),
        1.0,
        "one failed model call is counted with its error type: {after}"
    );

    // The retried call: one chat span with the retry as an event, finished "stop";
    // the failed one: a chat span naming its error type.
    let spans = receiver
        .wait_for("the chat spans of the retried and failed turns", |spans| {
            let chats: Vec<_> = spans
                .iter()
                .filter(|s| s.name.starts_with("chat "))
                .collect();
            chats
                .iter()
                .any(|s| s.events.iter().any(|e| e == "gen_ai.client.retry"))
                && chats.iter().any(|s| s.attr("error.type").is_some())
        })
        .await;
    let retried_chat = spans
        .iter()
        .find(|s| {
            s.name.starts_with("chat ") && s.events.iter().any(|e| e == "gen_ai.client.retry")
        })
        .unwrap();
    assert_eq!(
        retried_chat.attr("gen_ai.response.finish_reasons"),
        Some("stop"),
        "{retried_chat:#?}"
    );
    assert!(
        retried_chat.attr("error.type").is_none(),
        "{retried_chat:#?}"
    );
    let failed_chat = spans
        .iter()
        .find(|s| s.name.starts_with("chat ") && s.attr("error.type").is_some())
        .unwrap();
    assert_eq!(
        failed_chat
            .events
            .iter()
            .filter(|e| *e == "gen_ai.client.retry")
            .count(),
        2,
        "two retries before it gave up: {failed_chat:#?}"
    );
    let failed_tool = one(&spans, "the failed tool call", |s| {
        s.name == "execute_tool read_file"
    });
    assert!(failed_tool.attr("error.type").is_some(), "{failed_tool:#?}");
}
