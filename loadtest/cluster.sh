#!/usr/bin/env bash
# loadtest/cluster.sh NODES N K C L — the load of run.sh against NODES `facio serve`
# processes in cluster mode on this host: one PostgreSQL store (STORAGE_URL, required),
# one Redis (REDIS_URL, required), one scripted model at a fixed latency of L ms. Each
# session's turns go round the nodes, so with NODES > 1 most turns are forwarded to
# the node holding their session. TOOL=list_dir: one tool call per turn.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${1:-3} N=${2:-1000} K=${3:-3} C=${4:-50} L=${5:-0}
: "${STORAGE_URL:?set STORAGE_URL=postgres://… (a database owned by an ordinary role)}"
: "${REDIS_URL:?set REDIS_URL=redis://…}"

cargo build --release --quiet -p facio --bin facio -p facio-tests --bin scripted-model -p facio-loadtest --bin facio-loadtest
TARGET=${CARGO_TARGET_DIR:-target}/release
FACIO=${FACIO:-$TARGET/facio}
TMP=$(mktemp -d -t facio-cluster-load-XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

. loadtest/lib.sh

"$TARGET/scripted-model" --port 0 --latency-ms "$L" --content "ok" ${TOOL:+--tool "$TOOL"} >"$TMP/model.log" 2>&1 &
PIDS+=($!)
MODEL_URL=$(wait_line "$TMP/model.log" 'http://127.0.0.1:[0-9]*')
export FACIO_MASTER_KEY=${FACIO_MASTER_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}
INTERNAL=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
SUFFIX=$$
URLS=() NODE_PIDS=()
for i in $(seq 1 "$NODES"); do
    cat >"$TMP/node$i.json" <<JSON
{
  "agents": {"defaults": {"model": "scripted-1", "provider": "scripted", "maxToolIterations": 5}},
  "providers": {"scripted": {"apiKey": "sk-load", "apiBase": "$MODEL_URL/v1"}},
  "storage": {"dataDir": "$TMP/data$i", "url": "$STORAGE_URL"},
  "api": {"port": 0},
  "cluster": {"redisUrl": "$REDIS_URL", "nodeId": "load$i-$SUFFIX", "internalToken": "$INTERNAL"},
  "limits": {"tenantRequestsPerMinute": 100000000, "tokenRequestsPerMinute": 100000000},
  "logging": {"level": "warn"}
}
JSON
    "$FACIO" serve --config "$TMP/node$i.json" --workspace "$TMP/ws" >"$TMP/node$i.log" 2>&1 &
    PIDS+=($!) NODE_PIDS+=($!)
    URLS+=("$(wait_line "$TMP/node$i.log" 'http://[0-9.:]*')")
done
# The last node saw all of them at its start; the others see it at their next
# membership refresh (every third of the 10 s lease TTL).
wait_line "$TMP/node$NODES.log" "of $NODES live" >/dev/null
sleep 4
IFS=, ; URL_LIST="${URLS[*]}" PID_LIST="${NODE_PIDS[*]}"; unset IFS
"$TARGET/facio-loadtest" --url "$URL_LIST" --sessions "$N" --turns "$K" \
    --concurrency "$C" --model-latency-ms "$L" --pid "$PID_LIST"
