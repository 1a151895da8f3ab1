#!/usr/bin/env bash
# loadtest/run.sh N K C L — N sessions × K turns at concurrency C against a release
# `facio serve` whose model is the scripted model at a fixed latency of L ms.
# TOOL=list_dir: every turn makes one call of that tool before its answer.
# STORAGE_URL=postgres://…: the gateway's store (default: SQLite in a temp dir).
# FACIO=path: another gateway binary (an earlier build, for A/B runs).
# OTLP=1: the gateway exports its spans and metrics over OTLP/HTTP to a sink on this
# host (loadtest/otlp_sink.py), to measure what tracing costs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000} K=${2:-3} C=${3:-50} L=${4:-0}

cargo build --release --quiet -p facio --bin facio -p facio-tests --bin scripted-model -p facio-loadtest --bin facio-loadtest
TARGET=${CARGO_TARGET_DIR:-target}/release
FACIO=${FACIO:-$TARGET/facio}
TMP=$(mktemp -d -t facio-load-XXXXXX)
MODEL_PID="" FACIO_PID="" SINK_PID=""
cleanup() {
    [[ -n "$FACIO_PID" ]] && kill "$FACIO_PID" 2>/dev/null && wait "$FACIO_PID" 2>/dev/null
    [[ -n "$MODEL_PID" ]] && kill "$MODEL_PID" 2>/dev/null
    [[ -n "$SINK_PID" ]] && kill "$SINK_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

. loadtest/lib.sh

"$TARGET/scripted-model" --port 0 --latency-ms "$L" --content "ok" ${TOOL:+--tool "$TOOL"} >"$TMP/model.log" 2>&1 &
MODEL_PID=$!
MODEL_URL=$(wait_line "$TMP/model.log" 'http://127.0.0.1:[0-9]*')

STORAGE_JSON=""
[[ -n "${STORAGE_URL:-}" ]] && STORAGE_JSON=", \"url\": \"$STORAGE_URL\""
TELEMETRY_JSON=""
if [[ -n "${OTLP:-}" ]]; then
    python3 loadtest/otlp_sink.py >"$TMP/sink.log" 2>&1 &
    SINK_PID=$!
    SINK_URL=$(wait_line "$TMP/sink.log" 'http://127.0.0.1:[0-9]*')
    TELEMETRY_JSON=", \"telemetry\": {\"otlpEndpoint\": \"$SINK_URL\"}"
fi
cat >"$TMP/config.json" <<JSON
{
  "agents": {"defaults": {"model": "scripted-1", "provider": "scripted", "maxToolIterations": 5}},
  "providers": {"scripted": {"apiKey": "sk-load", "apiBase": "$MODEL_URL/v1"}},
  "storage": {"dataDir": "$TMP/data"$STORAGE_JSON},
  "limits": {"tenantRequestsPerMinute": 100000000, "tokenRequestsPerMinute": 100000000},
  "logging": {"level": "warn"}$TELEMETRY_JSON
}
JSON
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$FACIO" serve --config "$TMP/config.json" --workspace "$TMP/ws" --port "$PORT" >"$TMP/facio.log" 2>&1 &
FACIO_PID=$!
wait_line "$TMP/facio.log" 'listening on http://[0-9.:]*' >/dev/null

"$TARGET/facio-loadtest" --url "http://127.0.0.1:$PORT" --sessions "$N" --turns "$K" \
    --concurrency "$C" --model-latency-ms "$L" --pid "$FACIO_PID"
if [[ -n "$SINK_PID" ]]; then
    # Stopped first, so the gateway's last batch reaches the sink before it counts.
    kill "$FACIO_PID" 2>/dev/null && wait "$FACIO_PID" 2>/dev/null || true
    FACIO_PID=""
    kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=""
    tail -n 1 "$TMP/sink.log"
fi
