#!/usr/bin/env python3
"""Checks the Helm chart (helm/facio), the plain manifests (k8s/) and the Dockerfile.

Helm's own Go library (helm-python-sdk) lints the chart and renders it offline for
the default, HA, minimal and full values; every rendered object is validated against
the Kubernetes schemas (kubernetes-validate, strict); values.schema.json must refuse
bad values; k8s/ must equal a fresh render with the default values; Facio itself must
accept every rendered config.json; and the Dockerfile's HEALTHCHECK must pass against
a running `facio serve` and fail when nothing listens.

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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
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
    "minimal": HERE / "values-minimal.yaml",
    "full": HERE / "values-full.yaml",
}


def render(values: dict | None) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
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
            assert obj["spec"]["selector"]["matchLabels"], f"{name}: no selector"
            assert obj["spec"]["endpoints"][0]["port"] == "http", f"{name}: endpoint port"
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
    (cm,) = by_kind(objs)["ConfigMap"]
    return json.loads(cm["data"]["config.json"])


def quiet_render(values: dict) -> None:
    """Renders with the native library's stderr (its log of template failures) muted."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            render(values)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def expect_refused(values: dict, fragment: str) -> None:
    """The chart refuses `values` (schema or template check) naming `fragment`."""
    try:
        quiet_render(values)
    except (helm.HelmValuesError, helm.HelmRenderError) as exc:
        assert fragment in str(exc), f"refused, but the message lacks {fragment!r}: {exc}"
        return
    raise AssertionError(f"accepted {values}")


def facio_bin() -> Path:
    binary = Path(os.environ.get("FACIO_BIN", ROOT / "target" / "debug" / "facio"))
    if not binary.exists():
        print(f"building {binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary}")
        subprocess.run(["cargo", "build", "-q", "-p", "facio", "--bin", "facio"], cwd=ROOT, check=True)
    return binary


def pod_env(objs: list[dict], data_dir: Path) -> dict[str, str]:
    """The container's environment as the pod would see it: plain values, and secret
    references resolved from the chart's Secret (other Secrets are not there), with
    /data mapped to `data_dir`."""
    secret = {}
    for s in by_kind(objs).get("Secret", []):
        secret.update({k: base64.b64decode(v).decode() for k, v in s["data"].items()})
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
            if ref["name"] != f"{RELEASE}" or ref["key"] not in secret:
                continue
            value = secret[ref["key"]]
        env[var["name"]] = value.replace("/data", str(data_dir))
    return env


def facio_accepts(objs: list[dict]) -> None:
    binary = facio_bin()
    with tempfile.TemporaryDirectory(prefix="facio-chart-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = data / "config.json"
        config.write_text(json.dumps(config_json(objs)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACIO_")}
        env.update(pod_env(objs, data))
        env["FACIO_CONFIG"] = str(config)
        run = subprocess.run(
            [str(binary), "sessions", "list", "--config", str(config)],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert run.returncode == 0, f"facio refused the config: {run.stderr.strip() or run.stdout.strip()}"


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
    """The Dockerfile's HEALTHCHECK passes against `facio serve` with the default
    chart's config, fails with nothing listening, and the node stops on SIGTERM."""
    command = healthcheck_command()
    binary = facio_bin()
    objs = objects(render(None))
    with tempfile.TemporaryDirectory(prefix="facio-health-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = data / "config.json"
        config.write_text(json.dumps(config_json(objs)))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACIO_")}
        env.update(pod_env(objs, data))
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

    def default_shape() -> None:
        objs = rendered["default"]
        kinds = by_kind(objs)
        assert sorted(kinds) == ["ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim",
                                 "PodDisruptionBudget", "Service", "ServiceAccount"], sorted(kinds)
        assert len(kinds["Service"]) == 2, "a Service and a headless Service"
        headless = [s for s in kinds["Service"] if s["spec"].get("clusterIP") == "None"]
        assert headless and headless[0]["spec"]["publishNotReadyAddresses"] is True
        dep = deployment(objs)
        spec = dep["spec"]["template"]["spec"]
        assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
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

    check("default values: one node on a volume, probes, drain, locked-down pod", default_shape)

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
        env = container(objs)["env"]
        keys = {v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
                for v in env if "secretKeyRef" in v.get("valueFrom", {})}
        assert keys == {"FACIO_MASTER_KEY": "facio-secrets", "FACIO_MANAGEMENT_TOKEN": "facio-secrets",
                        "FACIO_STORAGE__URL": "facio-secrets", "FACIO_CLUSTER__REDIS_URL": "facio-secrets",
                        "FACIO_CLUSTER__INTERNAL_TOKEN": "facio-secrets"}, keys
        # Each pod advertises its own address to the others (Kubernetes expands $(POD_IP)).
        names = [v["name"] for v in env]
        (pod_ip,) = [v for v in env if v["name"] == "POD_IP"]
        assert pod_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        (advertise,) = [v for v in env if v["name"] == "FACIO_CLUSTER__ADVERTISE_URL"]
        assert advertise["value"] == "http://$(POD_IP):8900", advertise
        assert names.index("POD_IP") < names.index("FACIO_CLUSTER__ADVERTISE_URL"), names
        topology = [t["topologyKey"] for t in dep["spec"]["template"]["spec"]["topologySpreadConstraints"]]
        assert "topology.kubernetes.io/zone" in topology
        with helm.Chart.load(str(CHART)) as chart:
            merged = chart.merge_values(load_values(VALUE_SETS["ha"]))
        assert merged["replicaCount"] == 3

    check("HA values: 3 replicas, HPA, PDB minAvailable 2, secrets by name", ha_shape)

    def minimal_shape() -> None:
        kinds = by_kind(rendered["minimal"])
        assert sorted(kinds) == ["ConfigMap", "Deployment", "Service"], sorted(kinds)

    check("minimal values: Deployment, Service, ConfigMap only", minimal_shape)

    def full_shape() -> None:
        objs = rendered["full"]
        kinds = by_kind(objs)
        for kind in ["Ingress", "ServiceMonitor", "Secret", "NetworkPolicy"]:
            assert kind in kinds, f"no {kind}"
        (secret,) = kinds["Secret"]
        assert sorted(secret["data"]) == ["database-url", "jwt-hs256-secret", "management-token", "master-key"]
        (policy,) = kinds["NetworkPolicy"]
        assert "Egress" in policy["spec"]["policyTypes"]
        config = config_json(objs)
        assert config["auth"]["publicKeysFile"] == "/etc/facio/jwt/keys.pem"
        assert deployment(objs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 120
        text = json.dumps(objs)
        assert "not-a-real-management-token" not in json.dumps(config), "a secret in config.json"
        assert "not-a-real" not in json.dumps(deployment(objs)), "a secret in the Deployment"
        assert text.count("facio-provider-keys") == 1

    check("full values: Ingress, ServiceMonitor, Secret, egress policy, no secret outside the Secret", full_shape)

    def schema_refuses() -> None:
        expect_refused({"replicaCount": "three"}, "replicaCount")
        expect_refused({"config": {"api": {"hostx": "0.0.0.0"}}}, "hostx")
        expect_refused({"config": {"api": {"port": 9000}}}, "port")
        expect_refused({"config": {"tools": {"exec": {"sandbox": "maybe"}}}}, "sandbox")
        expect_refused({"config": {"cluster": {"redisUrl": "redis://x"}}}, "redisUrl")
        expect_refused({"persistence": {"size": "lots"}}, "size")
        expect_refused({"service": {"port": 70000}}, "port")
        expect_refused({"unknownTopLevel": True}, "unknownTopLevel")

    check("values.schema.json refuses bad values", schema_refuses)

    def secrets_by_name() -> None:
        named = {"secrets": {"managementToken": {"value": "ignored", "existingSecret": "mine", "key": "t"}}}
        objs = objects(render(named))
        assert "Secret" not in by_kind(objs), "a Secret for a value given by name"
        (var,) = [v for v in container(objs)["env"] if v["name"] == "FACIO_MANAGEMENT_TOKEN"]
        assert var["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "t"}

    check("a secret named by existingSecret is taken from it, never stored", secrets_by_name)

    def templates_refuse() -> None:
        expect_refused({"replicaCount": 3}, "cluster mode")
        expect_refused({"autoscaling": {"enabled": True}}, "cluster mode")
        # Without a volume, several replicas still need the shared store and Redis.
        expect_refused({"replicaCount": 3, "persistence": {"enabled": False}}, "cluster mode")
        expect_refused({"secrets": {"redisUrl": {"value": "redis://redis:6379", "key": "redis-url"}}},
                       "internalToken")
        expect_refused({"lifecycle": {"terminationGracePeriodSeconds": 20}}, "terminationGracePeriodSeconds")

    check("the chart refuses what cannot work (replicas on one volume or without cluster mode, cluster mode "
          "without its token, a grace period shorter than the drain)",
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

    check("Dockerfile: Rust build stage, slim non-root runtime, nothing the build needs ignored",
          dockerfile_shape)
    check("Dockerfile HEALTHCHECK passes on a serving node, fails without one; SIGTERM stops it",
          healthcheck_against_serve)

    print(f"chart checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
