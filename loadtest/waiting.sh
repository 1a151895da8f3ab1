#!/usr/bin/env bash
# loadtest/waiting.sh N [C] [S] — N sessions on one release `facio serve` (SQLite in a
# temp dir unless STORAGE_URL is set), each ending its turn at a human review: the
# scripted model calls `exec` (TOOL=… for another gated tool), which the default policy
# sends to a human. Prints the gateway's RSS before, once all N wait, and once they
# passivated (IDLE=s, the sessions' idle time before passivation, default 60), then
# approves S of them (default 1000) one by one (DECIDE_C=… at once), timing each
# run's resumption on its event stream. C: sessions opened at once (default 50).
# FACIO=path: another gateway binary.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000} C=${2:-50} S=${3:-1000}
IDLE=${IDLE:-60} TOOL=${TOOL:-exec} DECIDE_C=${DECIDE_C:-1}

cargo build --release --quiet -p facio --bin facio -p facio-tests --bin scripted-model -p facio-loadtest --bin facio-waiting
TARGET=${CARGO_TARGET_DIR:-target}/release
FACIO=${FACIO:-$TARGET/facio}
TMP=$(mktemp -d -t facio-waiting-XXXXXX)
MODEL_PID="" FACIO_PID=""
cleanup() {
    [[ -n "$FACIO_PID" ]] && kill "$FACIO_PID" 2>/dev/null && wait "$FACIO_PID" 2>/dev/null
    [[ -n "$MODEL_PID" ]] && kill "$MODEL_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

. loadtest/lib.sh

"$TARGET/scripted-model" --port 0 --content "ok" --tool "$TOOL" >"$TMP/model.log" 2>&1 &
MODEL_PID=$!
MODEL_URL=$(wait_line "$TMP/model.log" 'http://127.0.0.1:[0-9]*')

export FACIO_MANAGEMENT_TOKEN=${FACIO_MANAGEMENT_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}
STORAGE_JSON=""
[[ -n "${STORAGE_URL:-}" ]] && STORAGE_JSON=", \"url\": \"$STORAGE_URL\""
cat >"$TMP/config.json" <<JSON
{
  "agents": {"defaults": {"model": "scripted-1", "provider": "scripted", "maxToolIterations": 5,
                          "idlePassivateS": $IDLE}},
  "providers": {"scripted": {"apiKey": "sk-load", "apiBase": "$MODEL_URL/v1"}},
  "storage": {"dataDir": "$TMP/data"$STORAGE_JSON},
  "limits": {"tenantRequestsPerMinute": 100000000, "tokenRequestsPerMinute": 100000000},
  "logging": {"level": "warn"}
}
JSON
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$FACIO" serve --config "$TMP/config.json" --workspace "$TMP/ws" --port "$PORT" >"$TMP/facio.log" 2>&1 &
FACIO_PID=$!
wait_line "$TMP/facio.log" 'listening on http://[0-9.:]*' >/dev/null

"$TARGET/facio-waiting" --url "http://127.0.0.1:$PORT" --pid "$FACIO_PID" --sessions "$N" \
    --concurrency "$C" --sample "$S" --decide-concurrency "$DECIDE_C" \
    --passivate-timeout-s $((IDLE * 3 + 120))
echo "scripted model RSS: $(grep VmRSS /proc/$MODEL_PID/status | tr -s ' ')"
