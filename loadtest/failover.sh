#!/usr/bin/env bash
# loadtest/failover.sh [REPS] [M] — failover time of a cluster of three release
# `facio serve` nodes on this host (one PostgreSQL store, STORAGE_URL, required; one
# Redis, REDIS_URL, required). Each repetition starts three fresh nodes, opens M
# sessions (default 200) with one turn each, sent round the nodes, kills one node with
# SIGKILL (the first, then the second, ...), and times for each of its sessions the
# kill → the first turn a survivor answers (tries every 100 ms, through the survivors
# in turn); then stops the survivors. REPS defaults to 3. LEASE_TTL=s sets
# cluster.leaseTtlS (default 10, the default of the config).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3} M=${2:-200} LEASE_TTL=${LEASE_TTL:-10} NODES=3
: "${STORAGE_URL:?set STORAGE_URL=postgres://… (a database owned by an ordinary role)}"
: "${REDIS_URL:?set REDIS_URL=redis://…}"

cargo build --release --quiet -p facio --bin facio -p facio-tests --bin scripted-model -p facio-loadtest --bin facio-failover
TARGET=${CARGO_TARGET_DIR:-target}/release
FACIO=${FACIO:-$TARGET/facio}
TMP=$(mktemp -d -t facio-failover-XXXXXX)
MODEL_PID="" NODE_PIDS=()
stop_nodes() {
    for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    NODE_PIDS=()
}
cleanup() {
    stop_nodes
    [[ -n "$MODEL_PID" ]] && kill "$MODEL_PID" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

. loadtest/lib.sh

"$TARGET/scripted-model" --port 0 --content "ok" >"$TMP/model.log" 2>&1 &
MODEL_PID=$!
MODEL_URL=$(wait_line "$TMP/model.log" 'http://127.0.0.1:[0-9]*')
export FACIO_MASTER_KEY=${FACIO_MASTER_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}
export FACIO_MANAGEMENT_TOKEN=${FACIO_MANAGEMENT_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}
INTERNAL=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
SUFFIX=$$

for rep in $(seq 1 "$REPS"); do
    URLS=()
    for i in $(seq 1 "$NODES"); do
        cat >"$TMP/node$i.json" <<JSON
{
  "agents": {"defaults": {"model": "scripted-1", "provider": "scripted", "maxToolIterations": 5}},
  "providers": {"scripted": {"apiKey": "sk-load", "apiBase": "$MODEL_URL/v1"}},
  "storage": {"dataDir": "$TMP/r$rep-data$i", "url": "$STORAGE_URL"},
  "api": {"port": 0},
  "cluster": {"redisUrl": "$REDIS_URL", "nodeId": "fo$i-r$rep-$SUFFIX", "internalToken": "$INTERNAL",
              "leaseTtlS": $LEASE_TTL},
  "limits": {"tenantRequestsPerMinute": 100000000, "tokenRequestsPerMinute": 100000000},
  "logging": {"level": "warn"}
}
JSON
        "$FACIO" serve --config "$TMP/node$i.json" --workspace "$TMP/ws" >"$TMP/r$rep-node$i.log" 2>&1 &
        NODE_PIDS+=($!)
        URLS+=("$(wait_line "$TMP/r$rep-node$i.log" 'http://[0-9.:]*')")
    done
    IFS=, ; URL_LIST="${URLS[*]}" PID_LIST="${NODE_PIDS[*]}"; unset IFS
    echo "--- repetition $rep"
    # facio-failover waits until every node lists all three before it opens sessions.
    "$TARGET/facio-failover" --url "$URL_LIST" --pid "$PID_LIST" --sessions "$M" \
        --victim $(((rep - 1) % NODES)) --prefix "failover-r$rep-$SUFFIX" | tee "$TMP/r$rep.out"
    stop_nodes
done

python3 - "$TMP" "$REPS" <<'PY'
import json, math, sys
tmp, reps = sys.argv[1], int(sys.argv[2])
times, lapses = [], []
for rep in range(1, reps + 1):
    last = open(f"{tmp}/r{rep}.out").read().strip().splitlines()[-1]
    summary = json.loads(last)
    times += summary["msAfterKill"]
    lapses.append(summary["membershipLapseMs"])
times.sort()
rank = lambda p: times[max(1, math.ceil(p / 100 * len(times))) - 1]
print(f"--- all {reps} repetitions: {len(times)} sessions of killed nodes")
print(f"kill → answered min / p50 / p90 / p99 / max  {times[0]:.0f} / {rank(50):.0f} / "
      f"{rank(90):.0f} / {rank(99):.0f} / {times[-1]:.0f} ms")
print("kill → left the membership       " + ", ".join(
    "-" if l is None else f"{l:.0f}" for l in lapses) + " ms")
PY
