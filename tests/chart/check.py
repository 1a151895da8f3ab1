#!/usr/bin/env python3
"""Checks the Helm chart (helm/facio), the plain manifests (k8s/) and the Dockerfile.

Helm's own Go library (helm-python-sdk) lints the chart and renders it offline for
the default (cluster mode on an external PostgreSQL and Redis), HA, single-node
SQLite, minimal and full values; every rendered object is validated against the
Kubernetes schemas (kubernetes-validate, strict); values.schema.json must refuse
bad values; k8s/ must equal a fresh render with the default values; the Grafana
dashboard must be built only from the series GET /metrics serves (METRICS below);
Facio itself must accept every rendered config.json with the environment the pod
gets from its Secrets (in cluster mode up to opening the PostgreSQL store, which a
stand-in answers) and answer the ServiceMonitor's token on GET /metrics; and the
Dockerfile's HEALTHCHECK must pass against a running `facio serve` and fail when
nothing listens.

    tests/chart/check.py            run the checks
    tests/chart/check.py --write    re-render k8s/ from the chart (then run the checks)

FACIO_BIN names the facio binary (default target/debug/facio, built when missing).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils as kv
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "facio"
K8S = ROOT / "k8s"
HERE = Path(__file__).resolve().parent
RELEASE = "facio"
NAMESPACE = "default"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest
# the validator knows.
KUBE_VERSIONS = ["1.27.0", kv.latest_version()]
# Kinds from CRDs, which the Kubernetes schemas do not cover: checked by shape.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
HEADER = (
    "# Rendered from helm/facio with its default values (release \"facio\"); do not edit.\n"
    "# Regenerate with: tests/chart/check.py --write\n"
)

# The series GET /metrics serves, with their labels (besides the scrape's job and
# instance). A histogram is served as <name>_bucket (with le), <name>_sum, <name>_count.
HISTOGRAM, COUNTER, GAUGE = "histogram", "counter", "gauge"
METRICS: dict[str, tuple[str, set[str]]] = {
    "gen_ai_client_token_usage": (HISTOGRAM, {
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
        "gen_ai_response_model", "gen_ai_token_type", "facio_tenant"}),
    "gen_ai_client_operation_duration_seconds": (HISTOGRAM, {
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
        "gen_ai_response_model", "facio_tenant", "error_type"}),
    "gen_ai_execute_tool_duration_seconds": (HISTOGRAM, {
        "gen_ai_tool_name", "gen_ai_operation_name", "facio_tenant"}),
    "facio_tool_calls_total": (COUNTER, {"gen_ai_tool_name", "facio_tool_outcome", "facio_tenant"}),
    "facio_tool_errors_total": (COUNTER, {"gen_ai_tool_name", "error_type", "facio_tenant"}),
    "facio_model_cost_usd_total": (COUNTER, {"facio_tenant", "gen_ai_request_model"}),
    "facio_reviews_opened_total": (COUNTER, {"facio_tenant", "facio_review_type"}),
    "facio_reviews_closed_total": (COUNTER, {"facio_tenant", "facio_review_type", "facio_review_outcome"}),
    "facio_review_decision_duration_seconds": (HISTOGRAM, {
        "facio_tenant", "facio_review_type", "facio_review_outcome"}),
    "facio_reviews_pending": (GAUGE, set()),
    "facio_turn_duration_seconds": (HISTOGRAM, {"facio_tenant", "facio_turn_stop"}),
    "facio_turn_overhead_seconds": (HISTOGRAM, {"facio_tenant"}),
    "facio_budget_stops_total": (COUNTER, {"facio_tenant", "facio_turn_stop"}),
    "facio_rate_limit_rejections_total": (COUNTER, {"facio_limit", "facio_tenant"}),
    "facio_sessions_active": (GAUGE, set()),
    "facio_sessions_passivated_total": (COUNTER, {"facio_tenant"}),
    "facio_lease_takeovers_total": (COUNTER, {"facio_tenant"}),
    "facio_store_commit_duration_seconds": (HISTOGRAM, {"facio_store"}),
    "facio_store_queue_depth": (GAUGE, set()),
    "facio_turns_queued": (GAUGE, set()),
    "facio_inbox_backlog": (GAUGE, set()),
    "http_server_request_duration_seconds": (HISTOGRAM, {
        "http_request_method", "http_route", "http_response_status_code"}),
}
SCRAPE_LABELS = {"job", "instance"}


def series_labels() -> dict[str, set[str]]:
    """Every series name a query may select, with the labels it carries."""
    series = {}
    for name, (kind, labels) in METRICS.items():
        labels = labels | SCRAPE_LABELS
        if kind == HISTOGRAM:
            series[name + "_bucket"] = labels | {"le"}
            series[name + "_sum"] = labels
            series[name + "_count"] = labels
        else:
            series[name] = labels
    return series


# What a PromQL expression may call or say besides series names.
PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes",
    "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta",
    "deriv", "floor", "group", "histogram_avg", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "idelta", "increase", "irate", "label_join",
    "label_replace", "last_over_time", "max", "max_over_time", "min", "min_over_time",
    "predict_linear", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar",
    "sort", "sort_desc", "stddev", "stdvar", "sum", "sum_over_time", "time", "timestamp",
    "topk", "vector",
}
PROMQL_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
PROMQL_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<range>\[[^\]]*\])
  | (?P<variable>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?:ms|[smhdwy])?)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<matchop>=~|!~|!=|==|<=|>=)
  | (?P<punct>[(){},=<>+\-*/%^@])
""", re.X)


def promql_tokens(expr: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(expr):
        match = PROMQL_TOKEN.match(expr, at)
        assert match, f"cannot read {expr[at:]!r} in {expr!r}"
        at = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def promql_parts(expr: str) -> tuple[list[tuple[str, dict[str, tuple[str, str]]]], set[str]]:
    """The series an expression selects, each with its matchers {label: (op, value)},
    and the labels it groups or matches by. Anything else that reads as a name (an
    unknown function, a bare {…} selector) is refused."""
    tokens = promql_tokens(expr)
    selectors, grouping = [], set()
    i = 0

    def labels_list(start: int) -> tuple[list[str], int]:
        assert tokens[start] == ("punct", "("), f"no label list at token {start} of {expr!r}"
        names, j = [], start + 1
        while tokens[j] != ("punct", ")"):
            kind, text = tokens[j]
            if kind == "name":
                names.append(text)
            else:
                assert text == ",", f"{text!r} in a label list of {expr!r}"
            j += 1
        return names, j + 1

    while i < len(tokens):
        kind, text = tokens[i]
        after = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "name" and text in PROMQL_GROUPING:
            if after == ("punct", "("):
                names, i = labels_list(i + 1)
                grouping.update(names)
            else:
                i += 1
            continue
        if kind == "name" and text.lower() in PROMQL_WORDS:
            i += 1
            continue
        if kind == "name" and (after == ("punct", "(") or after in (("name", "by"), ("name", "without"))):
            # A function, or an aggregation (sum by (…) (…)).
            assert text in PROMQL_FUNCTIONS, f"unknown function {text}() in {expr!r}"
            i += 1
            continue
        if kind == "name":
            matchers: dict[str, tuple[str, str]] = {}
            i += 1
            if after == ("punct", "{"):
                i += 1
                while tokens[i] != ("punct", "}"):
                    if tokens[i] == ("punct", ","):
                        i += 1
                        continue
                    (lk, label), (_, op), (vk, value) = tokens[i:i + 3]
                    assert lk == "name" and vk == "string" and op in ("=", "!=", "=~", "!~"), \
                        f"a matcher that is not label op \"value\" in {expr!r}"
                    assert label != "__name__", f"a series chosen by __name__ in {expr!r}"
                    matchers[label] = (op, json.loads(value) if value.startswith('"') else value[1:-1])
                    i += 3
                i += 1
            selectors.append((text, matchers))
            continue
        assert (kind, text) != ("punct", "{"), f"a selector without a series name in {expr!r}"
        i += 1
    return selectors, grouping


passed = 0
failed = 0


def check(name: str, fn) -> None:
    """Runs one check; a raised exception or a failed assert is a failure."""
    global passed, failed
    started = time.monotonic()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - every failure is reported the same way
        failed += 1
        print(f"FAIL {name}: {exc}")
        if not isinstance(exc, AssertionError):
            traceback.print_exc()
        return
    passed += 1
    print(f"ok   {name} ({time.monotonic() - started:.1f}s)")


def load_values(path: Path | None) -> dict | None:
    return yaml.safe_load(path.read_text()) if path else None


VALUE_SETS = {
    "default": None,
    "ha": CHART / "values-ha.yaml",
    "sqlite": CHART / "values-sqlite.yaml",
    "minimal": HERE / "values-minimal.yaml",
    "full": HERE / "values-full.yaml",
}


# The Secret the defaults name (secrets.existingSecret), as an operator creates it
# (README, "Deploy on Kubernetes"): the pod's cluster-mode variables come from it.
SHARED_SECRET = "facio-secrets"
EXTERNAL_SECRETS = {
    SHARED_SECRET: {
        "database-url": "postgres://facio:not-a-real-password@postgres.example:5432/facio?sslmode=prefer",
        "redis-url": "redis://:not-a-real-password@redis.example:6379/0",
        "internal-token": "not-a-real-internal-token",
        "master-key": "5e2d9c1b7a3f4e6d8c0b2a4f6e8d0c2b4a6f8e0d2c4b6a8f0e2d4c6b8a0f2e4d",
        "management-token": "not-a-real-management-token",
    },
}


def merged(base: dict | None, over: dict) -> dict:
    """`over` laid over `base` key by key (as Helm merges values)."""
    out = dict(base or {})
    for key, value in over.items():
        out[key] = merged(out.get(key), value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out


def render(values: dict | None, chart_dir: Path = CHART) -> dict[str, str]:
    with helm.Chart.load(str(chart_dir)) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(manifests: dict[str, str]) -> list[dict]:
    """Every object rendered, in template order (NOTES.txt is not a manifest)."""
    found = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(manifests[path]):
            if doc:
                found.append(doc)
    return found


def by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for obj in objs:
        kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def validate_objects(objs: list[dict]) -> None:
    assert objs, "nothing rendered"
    for obj in objs:
        key = (obj.get("apiVersion"), obj.get("kind"))
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if key in CRD_KINDS:
            service_monitor_shape(obj)
            continue
        for version in KUBE_VERSIONS:
            try:
                kv.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.path)
                raise AssertionError(f"{name} on Kubernetes {version}: {path}: {exc.message}")


def deployment(objs: list[dict]) -> dict:
    (dep,) = by_kind(objs)["Deployment"]
    return dep


def container(objs: list[dict]) -> dict:
    (c,) = deployment(objs)["spec"]["template"]["spec"]["containers"]
    return c


def config_json(objs: list[dict]) -> dict:
    (cm,) = [cm for cm in by_kind(objs)["ConfigMap"] if "config.json" in cm["data"]]
    return json.loads(cm["data"]["config.json"])


def dashboard_map(objs: list[dict]) -> dict:
    (cm,) = [cm for cm in by_kind(objs).get("ConfigMap", []) if "facio.json" in cm["data"]]
    return cm


def service_monitor_shape(obj: dict) -> None:
    """A ServiceMonitor selecting the chart's Service, scraping /metrics with the
    metrics token as its bearer token."""
    name = f"ServiceMonitor/{obj['metadata']['name']}"
    assert obj["spec"]["selector"]["matchLabels"], f"{name}: no selector"
    (endpoint,) = obj["spec"]["endpoints"]
    assert endpoint["port"] == "http", f"{name}: endpoint port"
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "authorization"}, sorted(endpoint)
    auth = endpoint.get("authorization")
    assert auth and auth["type"] == "Bearer", f"{name}: no bearer authorization"
    assert set(auth["credentials"]) == {"name", "key"} and all(auth["credentials"].values()), auth


def quiet_render(values: dict, chart_dir: Path = CHART) -> None:
    """Renders with the native library's stderr (its log of template failures) muted."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            render(values, chart_dir)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def expect_refused(values: dict, fragment: str, chart_dir: Path = CHART) -> None:
    """The chart refuses `values` (schema or template check) naming `fragment`."""
    try:
        quiet_render(values, chart_dir)
    except (helm.HelmValuesError, helm.HelmRenderError) as exc:
        assert fragment in str(exc), f"refused, but the message lacks {fragment!r}: {exc}"
        return
    raise AssertionError(f"accepted {values}")


def expect_templates_refuse(values: dict, fragment: str) -> None:
    """The templates themselves refuse `values` naming `fragment`, for a render that
    skips values.schema.json (helm template --skip-schema-validation)."""
    with tempfile.TemporaryDirectory(prefix="facio-chart-") as tmp:
        copy = Path(tmp) / "facio"
        shutil.copytree(CHART, copy)
        (copy / "values.schema.json").unlink()
        expect_refused(values, fragment, copy)


def facio_bin() -> Path:
    binary = Path(os.environ.get("FACIO_BIN", ROOT / "target" / "debug" / "facio"))
    if not binary.exists():
        print(f"building {binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary}")
        subprocess.run(["cargo", "build", "-q", "-p", "facio", "--bin", "facio"], cwd=ROOT, check=True)
    return binary


def pod_env(objs: list[dict], data_dir: Path, external: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The container's environment as the pod would see it: plain values, and secret
    references resolved from the chart's Secret and the `external` ones (name: data;
    others are not there), with /data mapped to `data_dir`. A reference to a key an
    existing Secret lacks stops the pod unless it is optional."""
    secrets = {name: dict(data) for name, data in (external or {}).items()}
    for s in by_kind(objs).get("Secret", []):
        secrets[s["metadata"]["name"]] = {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
    env = {}
    for var in container(objs).get("env", []):
        if "value" in var:
            # Kubernetes expands $(NAME) of variables defined before this one.
            value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                           lambda m: env.get(m.group(1), m.group(0)), var["value"])
        elif "fieldRef" in var["valueFrom"]:
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", var
            value = "10.0.0.7"
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            if ref["name"] not in secrets:
                continue
            if ref["key"] not in secrets[ref["name"]]:
                assert ref.get("optional"), f"{var['name']}: Secret {ref['name']} has no key {ref['key']}"
                continue
            value = secrets[ref["name"]][ref["key"]]
        env[var["name"]] = value.replace("/data", str(data_dir))
    return env


class PostgresStandIn:
    """A PostgreSQL server that refuses every login: it records each startup message
    (user, database) and answers it with FATAL 28P01, which a client gives up on at
    once. Facio getting that far has loaded and validated its whole config."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.startups: list[dict[str, str]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> "PostgresStandIn":
        return self

    def __exit__(self, *_) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    length, code = struct.unpack("!ii", self._read(conn, 8))
                    body = self._read(conn, length - 8)
                    if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                        conn.sendall(b"N")
                        continue
                    if code != 196608:  # protocol 3.0 startup
                        return
                    parts = body.split(b"\0")
                    params = {k.decode(): v.decode() for k, v in zip(parts[0::2], parts[1::2]) if k}
                    self.startups.append(params)
                    fields = (b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \""
                              + params.get("user", "").encode() + b"\"\0\0")
                    conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                    return
            except (OSError, ConnectionError, struct.error):
                return


def facio_accepts(objs: list[dict]) -> None:
    """Facio loads the rendered config.json with the pod's environment (its Secrets
    as the operator creates them). On SQLite it lists the (empty) sessions; in
    cluster mode, where the store is PostgreSQL, it validates the whole config (the
    Redis URL and internal token included: without the token it is refused) and
    opens the store named by the Secret's database URL, pointed at a stand-in that
    refuses the login."""
    binary = facio_bin()
    with tempfile.TemporaryDirectory(prefix="facio-chart-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = data / "config.json"
        config.write_text(json.dumps(config_json(objs)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACIO_")}
        pod = pod_env(objs, data, EXTERNAL_SECRETS)
        env.update(pod)
        env["FACIO_CONFIG"] = str(config)

        def sessions_list(env: dict[str, str]) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(binary), "sessions", "list", "--config", str(config)],
                env=env, capture_output=True, text=True, timeout=60,
            )

        url = pod.get("FACIO_STORAGE__URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            assert "FACIO_CLUSTER__REDIS_URL" not in pod, "cluster mode on a store the nodes do not share"
            run = sessions_list(env)
            assert run.returncode == 0, f"facio refused the config: {run.stderr.strip() or run.stdout.strip()}"
            return
        for var in ("FACIO_CLUSTER__REDIS_URL", "FACIO_CLUSTER__INTERNAL_TOKEN", "FACIO_CLUSTER__ADVERTISE_URL",
                    "FACIO_MASTER_KEY"):
            assert pod.get(var), f"cluster mode without {var}"
        parts = urllib.parse.urlsplit(url)
        with PostgresStandIn() as postgres:
            userinfo = parts.netloc.rpartition("@")[0]
            env["FACIO_STORAGE__URL"] = parts._replace(netloc=f"{userinfo}@127.0.0.1:{postgres.port}").geturl()
            run = sessions_list(env)
            out = run.stderr.strip() or run.stdout.strip()
            shown = f"postgres://{parts.username}:***@127.0.0.1:{postgres.port}{parts.path}"
            assert run.returncode != 0 and f"cannot open the store at {shown}" in out \
                and "password authentication failed" in out, \
                f"facio did not get as far as the store: {out}"
            assert postgres.startups and {"user": parts.username, "database": parts.path.lstrip("/")}.items() \
                <= postgres.startups[-1].items(), postgres.startups
            # The cluster settings were read: without the internal token it is refused.
            run = sessions_list({k: v for k, v in env.items() if k != "FACIO_CLUSTER__INTERNAL_TOKEN"})
            out = run.stderr.strip() or run.stdout.strip()
            assert run.returncode != 0 and "cluster.internalToken" in out, f"no internal token, yet: {out}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthcheck_command() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(l for l in text.splitlines() if l.startswith("HEALTHCHECK"))
    match = re.search(r"\bCMD\s+(\[.*\])\s*$", line)
    assert match, "HEALTHCHECK has no exec-form CMD"
    return json.loads(match.group(1))


def healthcheck_against_serve() -> None:
    """The Dockerfile's HEALTHCHECK passes against `facio serve` with the single-node
    (SQLite) chart's config and environment, fails with nothing listening, and the
    node stops on SIGTERM."""
    command = healthcheck_command()
    binary = facio_bin()
    objs = objects(render(load_values(VALUE_SETS["sqlite"])))
    with tempfile.TemporaryDirectory(prefix="facio-health-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = data / "config.json"
        config.write_text(json.dumps(config_json(objs)))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACIO_")}
        env.update(pod_env(objs, data, EXTERNAL_SECRETS))
        env.update({"FACIO_CONFIG": str(config), "FACIO_API__PORT": str(port)})
        log = open(Path(tmp) / "serve.log", "w+")
        node = subprocess.Popen(
            [str(binary), "serve", "--host", "127.0.0.1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                probe = subprocess.run(command, env=env, capture_output=True, timeout=10)
                if probe.returncode == 0:
                    break
                assert node.poll() is None, f"facio serve exited: {Path(log.name).read_text()}"
                assert time.monotonic() < deadline, "HEALTHCHECK never passed"
                time.sleep(0.2)
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=config_json(objs)["api"]["shutdownGraceS"] + 5)
            assert node.returncode == 0, f"facio serve exited {node.returncode} on SIGTERM"
            down = subprocess.run(command, env=env, capture_output=True, timeout=10)
            assert down.returncode != 0, "HEALTHCHECK passed with nothing listening"
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
            log.close()


def metrics_answer_the_service_monitor() -> None:
    """With secrets.metricsToken and the ServiceMonitor on, `facio serve` (one node on
    SQLite) answers GET /metrics with Prometheus text to the token the ServiceMonitor
    sends (from the Secret and key it names) and 401 to none or another."""
    values = merged(load_values(VALUE_SETS["sqlite"]),
                    {"secrets": {"metricsToken": {"value": "chart-check-metrics-token"}},
                     "serviceMonitor": {"enabled": True}})
    objs = objects(render(values))
    (monitor,) = by_kind(objs)["ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    credentials = endpoint["authorization"]["credentials"]
    (secret,) = [s for s in by_kind(objs)["Secret"] if s["metadata"]["name"] == credentials["name"]]
    token = base64.b64decode(secret["data"][credentials["key"]]).decode()
    binary = facio_bin()
    with tempfile.TemporaryDirectory(prefix="facio-metrics-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = data / "config.json"
        config.write_text(json.dumps(config_json(objs)))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FACIO_", "OTEL_"))}
        env.update(pod_env(objs, data, EXTERNAL_SECRETS))
        assert env.get("FACIO_METRICS_TOKEN") == token, "the pod does not get the ServiceMonitor's token"
        env.update({"FACIO_CONFIG": str(config), "FACIO_API__PORT": str(port)})
        log = open(Path(tmp) / "serve.log", "w+")
        node = subprocess.Popen([str(binary), "serve", "--host", "127.0.0.1"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)

        def get(bearer: str | None) -> tuple[int, str]:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{endpoint['path']}")
            if bearer is not None:
                request.add_header("Authorization", f"Bearer {bearer}")
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    return reply.status, reply.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    status, body = get(token)
                    break
                except OSError:
                    assert node.poll() is None, f"facio serve exited: {Path(log.name).read_text()}"
                    assert time.monotonic() < deadline, "facio serve never listened"
                    time.sleep(0.2)
            assert status == 200, f"GET /metrics with the metrics token: {status} {body[:300]}"
            # The node serves only series METRICS knows (the dashboard's allow-list),
            # with the labels it lists: the first scrape is in the second's HTTP series.
            status, body = get(token)
            served = series_labels()
            samples = [l for l in body.splitlines() if l and not l.startswith("#")]
            assert any(l.startswith("http_server_request_duration_seconds_count{") for l in samples), body[:300]
            for line in samples:
                match = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?', line)
                assert match, f"not a Prometheus sample: {line!r}"
                name, labels, _ = match.groups()
                assert name in served, f"/metrics serves {name}, which METRICS lacks"
                names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:\\.|[^"\\])*"', labels or ""))
                assert names <= served[name], f"{name} carries {sorted(names - served[name])}, which METRICS lacks"
            assert get(None)[0] == 401, "GET /metrics without a token"
            assert get("not-the-token")[0] == 401, "GET /metrics with a wrong token"
        finally:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=config_json(objs)["api"]["shutdownGraceS"] + 5)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
            log.close()


def dockerfile_shape() -> None:
    """The Dockerfile builds the facio binary in a Rust stage that the workspace's
    rust-version allows, runs it as non-root on Debian slim with CA certificates, and
    its build context (.dockerignore) keeps every source the build needs."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    stages = [l.split() for l in lines if l.startswith("FROM ")]
    assert len(stages) == 2, f"two stages, found {len(stages)}"
    build, runtime = stages
    match = re.fullmatch(r"rust:(\d+)\.(\d+)-slim-bookworm", build[1])
    assert match and build[2:] == ["AS", "build"], f"build stage: {' '.join(build)}"
    need = re.search(r'^rust-version = "(\d+)\.(\d+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    assert tuple(map(int, match.groups())) >= tuple(map(int, need.groups())), "builder older than rust-version"
    assert runtime[1] == "debian:bookworm-slim", f"runtime stage: {' '.join(runtime)}"
    assert "cargo build --release --locked -p facio --bin facio" in text
    assert "ca-certificates" in text and "util-linux" not in text
    user = next(l.split()[1] for l in lines if l.startswith("USER "))
    assert user.split(":")[0] not in ("0", "root"), "runs as root"
    assert json.loads(next(l[len("ENTRYPOINT "):] for l in lines if l.startswith("ENTRYPOINT "))) == ["facio"]
    assert json.loads(next(l[len("CMD "):] for l in lines if l.startswith("CMD "))) == ["serve", "--host", "0.0.0.0"]
    # What the build reads: the workspace manifests and members, the lock file, the
    # SQL migrations and the files the sources include.
    members = re.search(r"members = \[(.*?)\]", (ROOT / "Cargo.toml").read_text(), re.S).group(1)
    needed = ["Cargo.toml", "Cargo.lock", "migrations/sqlite", "api/static/inbox.html"]
    needed += [m.strip().strip('"') + "/Cargo.toml" for m in members.split(",") if m.strip()]
    patterns = [l.strip().rstrip("/") for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    for path in needed:
        assert (ROOT / path).exists(), f"{path} is gone: update the Dockerfile check"
        parts = Path(path).parts
        for pattern in patterns:
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                assert not fnmatch.fnmatch(prefix, pattern.removeprefix("**/")), \
                    f".dockerignore pattern {pattern!r} leaves {path} out of the build"


def k8s_files(manifests: dict[str, str]) -> dict[str, str]:
    """k8s/<template>.yaml for each template that renders an object."""
    files = {}
    for path in sorted(manifests):
        name = Path(path).name
        if name == "NOTES.txt" or not any(yaml.safe_load_all(manifests[path])):
            continue
        files[name] = HEADER + manifests[path].lstrip("-\n").rstrip() + "\n"
    return files


def write_k8s() -> None:
    files = k8s_files(render(None))
    K8S.mkdir(exist_ok=True)
    for old in K8S.glob("*.yaml"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (K8S / name).write_text(text)
    print(f"wrote {len(files)} files to k8s/")


def main() -> int:
    helm.disable_logging()
    if "--write" in sys.argv[1:]:
        write_k8s()
    print(f"helm-python-sdk {helm.helm_c_version()} (Helm {helm.helm_sdk_version()}), "
          f"kubernetes-validate against Kubernetes {', '.join(KUBE_VERSIONS)}")
    rendered: dict[str, list[dict]] = {}

    def lint() -> None:
        for name, path in VALUE_SETS.items():
            report = helm.lint(str(CHART), load_values(path), strict=True, namespace=NAMESPACE,
                               kube_version="v" + KUBE_VERSIONS[-1])
            problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
            assert not problems, f"helm lint ({name} values): {problems}"

    check("helm lint --strict, every values set", lint)

    for name, path in VALUE_SETS.items():
        def render_and_validate(name=name, path=path) -> None:
            values = load_values(path)
            with helm.Chart.load(str(CHART)) as chart:
                chart.validate_schema(values)
            rendered[name] = objects(render(values))
            validate_objects(rendered[name])

        check(f"{name} values render and every object is valid Kubernetes", render_and_validate)

    def cluster_env(objs: list[dict]) -> dict[str, dict]:
        """The container's variables from Secrets: name -> secretKeyRef."""
        return {v["name"]: v["valueFrom"]["secretKeyRef"]
                for v in container(objs)["env"] if "secretKeyRef" in v.get("valueFrom", {})}

    def advertises_pod_ip(objs: list[dict]) -> None:
        # Each pod advertises its own address to the others (Kubernetes expands $(POD_IP)).
        env = container(objs)["env"]
        names = [v["name"] for v in env]
        (pod_ip,) = [v for v in env if v["name"] == "POD_IP"]
        assert pod_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        (advertise,) = [v for v in env if v["name"] == "FACIO_CLUSTER__ADVERTISE_URL"]
        assert advertise["value"] == "http://$(POD_IP):8900", advertise
        assert names.index("POD_IP") < names.index("FACIO_CLUSTER__ADVERTISE_URL"), names

    def default_shape() -> None:
        objs = rendered["default"]
        kinds = by_kind(objs)
        assert sorted(kinds) == ["ConfigMap", "Deployment", "NetworkPolicy",
                                 "PodDisruptionBudget", "Service", "ServiceAccount"], sorted(kinds)
        assert len(kinds["Service"]) == 2, "a Service and a headless Service"
        headless = [s for s in kinds["Service"] if s["spec"].get("clusterIP") == "None"]
        assert headless and headless[0]["spec"]["publishNotReadyAddresses"] is True
        dep = deployment(objs)
        spec = dep["spec"]["template"]["spec"]
        assert dep["spec"]["replicas"] == 2, dep["spec"]["replicas"]
        assert dep["spec"]["strategy"] == {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        (pdb,) = kinds["PodDisruptionBudget"]
        assert pdb["spec"]["maxUnavailable"] == 1, pdb["spec"]
        # Cluster mode on the external PostgreSQL and Redis, from the Secret named once.
        refs = cluster_env(objs)
        assert refs == {
            "FACIO_MASTER_KEY": {"name": SHARED_SECRET, "key": "master-key"},
            "FACIO_MANAGEMENT_TOKEN": {"name": SHARED_SECRET, "key": "management-token", "optional": True},
            "FACIO_STORAGE__URL": {"name": SHARED_SECRET, "key": "database-url"},
            "FACIO_CLUSTER__REDIS_URL": {"name": SHARED_SECRET, "key": "redis-url"},
            "FACIO_CLUSTER__INTERNAL_TOKEN": {"name": SHARED_SECRET, "key": "internal-token"},
        }, refs
        advertises_pod_ip(objs)
        (data,) = [v for v in spec["volumes"] if v["name"] == "data"]
        assert data == {"name": "data", "emptyDir": {}}, data
        c = container(objs)
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        grace = config_json(objs)["api"]["shutdownGraceS"]
        assert spec["terminationGracePeriodSeconds"] > sleep + grace, "grace period shorter than the drain"
        sc, psc = c["securityContext"], spec["securityContext"]
        assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["allowPrivilegeEscalation"] and psc["runAsNonRoot"] and psc["runAsUser"] != 0
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/data", "/tmp", "/data/config.json"} <= mounts, mounts
        assert spec["topologySpreadConstraints"], "no topology spread"
        assert spec["automountServiceAccountToken"] is False
        assert config_json(objs)["api"] == {"host": "0.0.0.0", "port": 8900, "shutdownGraceS": 30}
        assert "Secret" not in kinds, "no secret values, no Secret"
        assert len(kinds["ConfigMap"]) == 2, "config.json and the Grafana dashboard"
        assert "telemetry" not in config_json(objs), "telemetry is the operator's choice"
        assert "FACIO_METRICS_TOKEN" not in json.dumps(c), "no metrics token, no variable"

    check("default values: cluster mode, two replicas, PostgreSQL, Redis, master key and internal token from "
          "the Secret named by secrets.existingSecret, no volume, probes, drain, locked-down pod, dashboard",
          default_shape)

    def sqlite_shape() -> None:
        objs = rendered["sqlite"]
        kinds = by_kind(objs)
        assert sorted(kinds) == ["ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim",
                                 "PodDisruptionBudget", "Service", "ServiceAccount"], sorted(kinds)
        dep = deployment(objs)
        assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}, dep["spec"]
        (claim,) = kinds["PersistentVolumeClaim"]
        assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        (data,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"]
        assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"], data
        refs = cluster_env(objs)
        assert refs == {
            "FACIO_MASTER_KEY": {"name": SHARED_SECRET, "key": "master-key", "optional": True},
            "FACIO_MANAGEMENT_TOKEN": {"name": SHARED_SECRET, "key": "management-token", "optional": True},
        }, refs
        names = {v["name"] for v in container(objs)["env"]}
        assert not names & {"POD_IP", "FACIO_CLUSTER__ADVERTISE_URL"}, names
        assert "Secret" not in kinds
        with tempfile.TemporaryDirectory() as tmp:
            env = pod_env(objs, Path(tmp), {SHARED_SECRET: {"management-token": "t"}})
        assert env.get("FACIO_MANAGEMENT_TOKEN") == "t" and "FACIO_MASTER_KEY" not in env, env

    check("SQLite values: one node on a PersistentVolumeClaim, Recreate, no cluster mode, master key and "
          "management token from the named Secret when it has them", sqlite_shape)

    def ha_shape() -> None:
        objs = rendered["ha"]
        kinds = by_kind(objs)
        (hpa,) = kinds["HorizontalPodAutoscaler"]
        assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] >= 3
        (pdb,) = kinds["PodDisruptionBudget"]
        assert pdb["spec"]["minAvailable"] == 2 and "maxUnavailable" not in pdb["spec"]
        assert "PersistentVolumeClaim" not in kinds
        dep = deployment(objs)
        assert "replicas" not in dep["spec"], "the HPA owns the replica count"
        assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
        keys = {name: ref["name"] for name, ref in cluster_env(objs).items()}
        assert keys == {"FACIO_MASTER_KEY": SHARED_SECRET, "FACIO_MANAGEMENT_TOKEN": SHARED_SECRET,
                        "FACIO_STORAGE__URL": SHARED_SECRET, "FACIO_CLUSTER__REDIS_URL": SHARED_SECRET,
                        "FACIO_CLUSTER__INTERNAL_TOKEN": SHARED_SECRET}, keys
        advertises_pod_ip(objs)
        topology = [t["topologyKey"] for t in dep["spec"]["template"]["spec"]["topologySpreadConstraints"]]
        assert "topology.kubernetes.io/zone" in topology
        with helm.Chart.load(str(CHART)) as chart:
            merged = chart.merge_values(load_values(VALUE_SETS["ha"]))
        assert merged["replicaCount"] == 3

    check("HA values: 3 replicas, HPA, PDB minAvailable 2, secrets by name", ha_shape)

    def minimal_shape() -> None:
        kinds = by_kind(rendered["minimal"])
        assert sorted(kinds) == ["ConfigMap", "Deployment", "Service"], sorted(kinds)
        assert len(kinds["ConfigMap"]) == 1, "the dashboard is off"

    check("minimal values: Deployment, Service, ConfigMap only", minimal_shape)

    def full_shape() -> None:
        objs = rendered["full"]
        kinds = by_kind(objs)
        for kind in ["Ingress", "ServiceMonitor", "Secret", "NetworkPolicy"]:
            assert kind in kinds, f"no {kind}"
        (secret,) = kinds["Secret"]
        assert sorted(secret["data"]) == ["database-url", "internal-token", "jwt-hs256-secret", "management-token",
                                          "master-key", "metrics-token", "redis-url"], sorted(secret["data"])
        # Cluster mode from values: every variable from the chart's Secret, none from
        # secrets.existingSecret.
        refs = cluster_env(objs)
        for var, key in [("FACIO_STORAGE__URL", "database-url"), ("FACIO_CLUSTER__REDIS_URL", "redis-url"),
                         ("FACIO_CLUSTER__INTERNAL_TOKEN", "internal-token"), ("FACIO_MASTER_KEY", "master-key"),
                         ("FACIO_MANAGEMENT_TOKEN", "management-token")]:
            assert refs[var] == {"name": secret["metadata"]["name"], "key": key}, (var, refs[var])
        assert SHARED_SECRET not in json.dumps(objs), "a reference to secrets.existingSecret"
        plain = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert plain["redis-url"] == "redis://:not-a-real-redis-password@redis.example:6379/0", plain["redis-url"]
        assert plain["internal-token"] == "not-a-real-internal-token", plain["internal-token"]
        assert plain["database-url"].startswith("postgres://"), plain["database-url"]
        advertises_pod_ip(objs)
        # The ServiceMonitor sends the metrics token from the chart's Secret, the one
        # the pod reads FACIO_METRICS_TOKEN from.
        (monitor,) = kinds["ServiceMonitor"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["interval"] == "15s", endpoint
        assert endpoint["authorization"] == {
            "type": "Bearer", "credentials": {"name": secret["metadata"]["name"], "key": "metrics-token"}}
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        (var,) = [v for v in container(objs)["env"] if v["name"] == "FACIO_METRICS_TOKEN"]
        assert var["valueFrom"]["secretKeyRef"] == endpoint["authorization"]["credentials"], var
        assert base64.b64decode(secret["data"]["metrics-token"]).decode() == "not-a-real-metrics-token"
        (policy,) = kinds["NetworkPolicy"]
        assert "Egress" in policy["spec"]["policyTypes"]
        # Prometheus may reach the HTTP port though ingressFrom admits only the ingress.
        scrapers = [r for r in policy["spec"]["ingress"]
                    if any(p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                           == "monitoring" for p in r.get("from", []))]
        assert len(scrapers) == 1 and scrapers[0]["ports"] == [{"port": "http", "protocol": "TCP"}], scrapers
        board = dashboard_map(objs)
        assert board["metadata"]["labels"]["team"] == "agents"
        assert board["metadata"]["annotations"] == {"grafana_folder": "Facio"}
        config = config_json(objs)
        assert config["auth"]["publicKeysFile"] == "/etc/facio/jwt/keys.pem"
        assert config["telemetry"]["sampleRatio"] == 0.25
        assert "metricsToken" not in config["api"]
        assert deployment(objs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 120
        text = json.dumps(objs)
        assert "not-a-real" not in json.dumps(config), "a secret in config.json"
        assert "not-a-real" not in json.dumps(deployment(objs)), "a secret in the Deployment"
        assert text.count("facio-provider-keys") == 1

    check("full values: Ingress, ServiceMonitor with the metrics token, Secret, egress policy with scrapers, "
          "no secret outside the Secret", full_shape)

    def dashboard_built_from_metrics() -> None:
        series = series_labels()
        for name in ("default", "full"):
            cm = dashboard_map(rendered[name])
            assert cm["metadata"]["labels"]["grafana_dashboard"] == "1", cm["metadata"]["labels"]
        cm = dashboard_map(rendered["default"])
        assert cm["data"]["facio.json"] == (CHART / "dashboards" / "facio.json").read_text(), \
            "the ConfigMap's dashboard is not dashboards/facio.json"
        board = json.loads(cm["data"]["facio.json"])
        assert board["uid"] == "facio-overview" and board["title"] == "Facio", (board["uid"], board["title"])
        assert 36 <= board["schemaVersion"] <= 41, board["schemaVersion"]
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        tenant = variables["tenant"]
        assert tenant["type"] == "query" and tenant["includeAll"] and tenant["multi"], tenant
        assert tenant["query"]["query"] == tenant["definition"] == \
            "label_values(facio_turn_duration_seconds_count, facio_tenant)", tenant
        source = {"type": "prometheus", "uid": "${datasource}"}
        assert tenant["datasource"] == source

        panels = []
        for panel in board["panels"]:
            panels.append(panel)
            panels.extend(panel.get("panels", []))
        rows = [p["title"] for p in panels if p["type"] == "row"]
        assert rows == ["Overview", "Cost and tokens per tenant", "Human review", "Errors", "Store and queues"], rows
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), "panel ids repeat"
        used, exprs = set(), 0
        for panel in panels:
            if panel["type"] == "row":
                continue
            title = panel["title"]
            assert panel["datasource"] == source, f"{title}: datasource {panel['datasource']}"
            assert panel["targets"], f"{title}: no query"
            for target in panel["targets"]:
                assert target["datasource"] == source, f"{title}: target datasource"
                expr = target["expr"]
                exprs += 1
                selectors, grouping = promql_parts(expr)
                assert selectors, f"{title}: {expr!r} selects no series"
                carried = set()
                for metric, matchers in selectors:
                    assert metric in series, f"{title}: {metric} is not a series /metrics serves"
                    used.add(metric)
                    carried |= series[metric]
                    unknown = set(matchers) - series[metric]
                    assert not unknown, f"{title}: {metric} has no label {sorted(unknown)}"
                    if "facio_tenant" in series[metric]:
                        assert matchers.get("facio_tenant") == ("=~", "$tenant"), \
                            f"{title}: {metric} not filtered by the tenant variable"
                assert grouping <= carried, f"{title}: groups by {sorted(grouping - carried)}, which no series has"
                legend = set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", target.get("legendFormat", "")))
                assert legend <= grouping, f"{title}: legend names {sorted(legend - grouping)}, lost in the query"
        variable_metric = re.fullmatch(r"label_values\((\w+), (\w+)\)", tenant["definition"])
        assert variable_metric.group(2) in series[variable_metric.group(1)]
        families = {m for m in METRICS if any(s == m or s.startswith(m + "_") and s[len(m) + 1:] in
                                               ("bucket", "sum", "count") for s in used)}
        assert exprs >= 20, f"only {exprs} queries"
        assert families == set(METRICS), f"series the dashboard never shows: {sorted(set(METRICS) - families)}"
        # The reader itself: it refuses what it must refuse.
        for bad, fragment in [('sum(rate(facio_turns_total[5m]))', None),
                              ('rate({__name__="facio_turn_duration_seconds_count"}[5m])', "__name__"),
                              ('{facio_tenant="a"}', "without a series name"),
                              ('frobnicate(facio_sessions_active)', "unknown function")]:
            try:
                selectors, _ = promql_parts(bad)
            except AssertionError as exc:
                assert fragment and fragment in str(exc), exc
                continue
            assert fragment is None and any(m not in series for m, _ in selectors), bad

    check("the Grafana dashboard ConfigMap: labelled for the sidecar, valid JSON, every query built only "
          "from the series /metrics serves (names, labels, the tenant filter)", dashboard_built_from_metrics)

    def schema_refuses() -> None:
        expect_refused({"replicaCount": "three"}, "replicaCount")
        expect_refused({"config": {"api": {"hostx": "0.0.0.0"}}}, "hostx")
        expect_refused({"config": {"api": {"port": 9000}}}, "port")
        expect_refused({"config": {"tools": {"exec": {"sandbox": "maybe"}}}}, "sandbox")
        expect_refused({"config": {"cluster": {"redisUrl": "redis://x"}}}, "redisUrl")
        expect_refused({"persistence": {"size": "lots"}}, "size")
        expect_refused({"service": {"port": 70000}}, "port")
        expect_refused({"unknownTopLevel": True}, "unknownTopLevel")
        expect_refused({"config": {"telemetry": {"sampleRatio": 2}}}, "sampleRatio")
        expect_refused({"config": {"telemetry": {"sampleRatio": -0.1}}}, "sampleRatio")
        expect_refused({"config": {"telemetry": {"metricsIntervalS": 0}}}, "metricsIntervalS")
        expect_refused({"config": {"telemetry": {"otlpEndpoint": "otel-collector:4318"}}}, "otlpEndpoint")
        expect_refused({"config": {"telemetry": {"headers": {"X-Key": 1}}}}, "headers")
        expect_refused({"config": {"telemetry": {"captureContent": "yes"}}}, "captureContent")
        expect_refused({"config": {"telemetry": {"exporter": "otlp"}}}, "exporter")
        # A secret never goes in config.json: the metrics token is secrets.metricsToken.
        expect_refused({"config": {"api": {"metricsToken": "t"}}}, "metricsToken")
        expect_refused({"dashboard": {"labels": {"grafana_dashboard": 1}}}, "grafana_dashboard")
        expect_refused({"dashboard": {"enabledx": True}}, "enabledx")
        expect_refused({"cluster": {"enabled": "yes"}}, "/cluster/enabled")
        expect_refused({"cluster": {"replicas": 3}}, "replicas")
        expect_refused({"secrets": {"existingSecret": "Not_A_Name"}}, "/secrets/existingSecret")
        # Cluster mode (the default) with neither secrets.existingSecret nor the four
        # it needs given one by one.
        expect_refused({"secrets": {"existingSecret": ""}}, "/secrets/existingSecret")
        for missing in ["databaseUrl", "redisUrl", "internalToken", "masterKey"]:
            given = {name: {"value": "x"} for name in ["databaseUrl", "redisUrl", "internalToken", "masterKey"]
                     if name != missing}
            expect_refused({"secrets": {"existingSecret": "", **given}}, f"/secrets/{missing}")

    check("values.schema.json refuses bad values", schema_refuses)

    def secrets_by_name() -> None:
        named = {"secrets": {"managementToken": {"value": "ignored", "existingSecret": "mine", "key": "t"}}}
        objs = objects(render(named))
        assert "Secret" not in by_kind(objs), "a Secret for a value given by name"
        (var,) = [v for v in container(objs)["env"] if v["name"] == "FACIO_MANAGEMENT_TOKEN"]
        assert var["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "t"}
        named = {"secrets": {"metricsToken": {"existingSecret": "scrape", "key": "bearer"}},
                 "serviceMonitor": {"enabled": True}}
        objs = objects(render(named))
        assert "Secret" not in by_kind(objs), "a Secret for a value given by name"
        (monitor,) = by_kind(objs)["ServiceMonitor"]
        credentials = monitor["spec"]["endpoints"][0]["authorization"]["credentials"]
        assert credentials == {"name": "scrape", "key": "bearer"}, credentials
        (var,) = [v for v in container(objs)["env"] if v["name"] == "FACIO_METRICS_TOKEN"]
        assert var["valueFrom"]["secretKeyRef"] == credentials
        # The Secret named once for the cluster's secrets, one of them named on its own.
        named = {"secrets": {"existingSecret": "ours", "redisUrl": {"existingSecret": "redis-auth", "key": "url"}}}
        objs = objects(render(named))
        assert "Secret" not in by_kind(objs), "a Secret for values given by name"
        refs = cluster_env(objs)
        assert {k: (r["name"], r["key"]) for k, r in refs.items()} == {
            "FACIO_MASTER_KEY": ("ours", "master-key"), "FACIO_MANAGEMENT_TOKEN": ("ours", "management-token"),
            "FACIO_STORAGE__URL": ("ours", "database-url"), "FACIO_CLUSTER__REDIS_URL": ("redis-auth", "url"),
            "FACIO_CLUSTER__INTERNAL_TOKEN": ("ours", "internal-token")}, refs

    check("a secret named by existingSecret (its own, or secrets.existingSecret) is taken from it, never stored "
          "(the ServiceMonitor's too)", secrets_by_name)

    def templates_refuse() -> None:
        single = load_values(VALUE_SETS["sqlite"])
        expect_refused(merged(single, {"replicaCount": 3}), "one volume")
        expect_refused(merged(single, {"autoscaling": {"enabled": True}}), "one volume")
        # Without a volume, several replicas still need cluster mode.
        expect_refused(merged(single, {"replicaCount": 3, "persistence": {"enabled": False}}), "cluster mode")
        expect_refused({"cluster": {"enabled": False}}, "cluster mode")
        expect_refused(merged(single, {"strategy": {"type": "RollingUpdate"}}), "Recreate")
        # Cluster mode settings without cluster mode.
        expect_refused(merged(single, {"secrets": {"redisUrl": {"value": "redis://redis:6379"}}}),
                       "secrets.redisUrl is for cluster mode")
        expect_refused(merged(single, {"secrets": {"internalToken": {"existingSecret": "mine"}}}),
                       "secrets.internalToken is for cluster mode")
        # Cluster mode without what it needs, past the schema too.
        expect_templates_refuse({"secrets": {"existingSecret": ""}},
                                "needs secrets.databaseUrl, secrets.redisUrl, secrets.internalToken, secrets.masterKey")
        expect_templates_refuse({"secrets": {"existingSecret": "", "databaseUrl": {"value": "postgres://db/facio"},
                                             "redisUrl": {"value": "redis://redis:6379"}, "masterKey": {"value": "k"}}},
                                "cluster mode (cluster.enabled=true) needs secrets.internalToken:")
        # Cluster mode on a store the nodes cannot share.
        expect_refused({"secrets": {"databaseUrl": {"value": "sqlite:///data/facio.db"}}}, "postgres://")
        expect_refused({"lifecycle": {"terminationGracePeriodSeconds": 20}}, "terminationGracePeriodSeconds")
        expect_refused({"serviceMonitor": {"enabled": True}}, "secrets.metricsToken")

    check("the chart refuses what cannot work (replicas on one volume or without cluster mode, a rolling "
          "update on a volume, cluster mode without its secrets (past the schema too), Redis or the internal "
          "token without cluster mode, cluster mode on SQLite, a grace "
          "period shorter than the drain, a ServiceMonitor without the metrics token)",
          templates_refuse)

    def k8s_matches() -> None:
        want = k8s_files(render(None))
        have = {p.name: p.read_text() for p in K8S.glob("*.yaml")}
        assert sorted(have) == sorted(want), f"k8s/ has {sorted(have)}, a render gives {sorted(want)}"
        stale = [name for name in want if have[name] != want[name]]
        assert not stale, f"k8s/ differs from a fresh render in {stale}: run tests/chart/check.py --write"

    check("k8s/ equals a fresh render with default values", k8s_matches)

    for name in VALUE_SETS:
        check(f"facio accepts the {name} values' config.json",
              lambda name=name: facio_accepts(rendered[name]))

    check("GET /metrics answers the ServiceMonitor's bearer token (from the Secret it names), refuses others, "
          "serves only series the dashboard's list knows",
          metrics_answer_the_service_monitor)
    check("Dockerfile: Rust build stage, slim non-root runtime, nothing the build needs ignored",
          dockerfile_shape)
    check("Dockerfile HEALTHCHECK passes on a serving node, fails without one; SIGTERM stops it",
          healthcheck_against_serve)

    print(f"chart checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
