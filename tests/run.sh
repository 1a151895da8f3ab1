#!/usr/bin/env bash
# The one test command. On a fresh Debian machine it installs what is missing
# (PostgreSQL, Redis, Chromium, openssl, the Python test clients), starts throw-away
# PostgreSQL and Redis on free ports under a temp dir, checks formatting and lints,
# runs every test
# of the workspace, and cleans up whatever happens.
#
#   tests/run.sh                  everything
#   tests/run.sh --services-only  start PostgreSQL and Redis, print their URLs, wait
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SERVICES_ONLY=0
[[ "${1:-}" == "--services-only" ]] && SERVICES_ONLY=1

section() { printf '\n==> %s\n' "$*"; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

section "checking system packages"
missing=()
[[ -n "$(pg_bin)" && -x "$(pg_bin)/initdb" ]] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PG_BIN=$(pg_bin)

TMP=$(mktemp -d -t facio-test-XXXXXX)
PGDATA="$TMP/pg"
cleanup() {
    set +e
    if [[ -f "$PGDATA/postmaster.pid" ]]; then
        if [[ $(id -u) == 0 ]]; then
            runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
        else
            "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
        fi
    fi
    [[ -f "$TMP/redis.pid" ]] && kill "$(cat "$TMP/redis.pid")" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

section "starting PostgreSQL"
PG_PORT=$(free_port)
mkdir -p "$PGDATA"
pg() {
    # PostgreSQL refuses to run as root.
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [[ $(id -u) == 0 ]]; then chown -R postgres:postgres "$TMP"; chmod 755 "$TMP"; fi
pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log"; exit 1; }
pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$TMP/pg.log" -w \
    -o "-p $PG_PORT -k $TMP -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$TMP/pg.log"; exit 1; }
psql_() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql_ -d postgres -c "CREATE DATABASE facio_test" >/dev/null
if [[ -d migrations/postgres ]]; then
    psql_ -d postgres -c "CREATE DATABASE facio_migrations_check" >/dev/null
    for migration in migrations/postgres/*.sql; do
        psql_ -d facio_migrations_check -f "$migration" >/dev/null
    done
    echo "PostgreSQL migrations apply cleanly ($(ls migrations/postgres/*.sql | wc -l) files)"
fi
export FACIO_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/facio_test"

section "starting Redis"
REDIS_PORT=$(free_port)
mkdir -p "$TMP/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --dir "$TMP/redis" --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log"
for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping | grep -q PONG
export FACIO_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
echo "FACIO_TEST_POSTGRES_URL=$FACIO_TEST_POSTGRES_URL"
echo "FACIO_TEST_REDIS_URL=$FACIO_TEST_REDIS_URL"

if ((SERVICES_ONLY)); then
    echo "services running; Ctrl-C stops them"
    while true; do sleep 3600; done
fi

section "Python test clients"
VENV="$ROOT/target/py-venv"
if [[ ! -x "$VENV/bin/python" ]] \
    || ! cmp -s tests/python/requirements.txt "$VENV/requirements.txt"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r tests/python/requirements.txt
    cp tests/python/requirements.txt "$VENV/requirements.txt"
fi
export FACIO_TEST_PYTHON="$VENV/bin/python"
"$FACIO_TEST_PYTHON" -c 'import openai; print("openai", openai.__version__)'

section "browser test clients"
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
echo "playwright-core $(node -p 'require("./tests/browser/node_modules/playwright-core/package.json").version') with $(/usr/bin/chromium --version)"

section "MCP servers for the MCP client tests"
if [[ ! -d tests/mcp/node_modules/@modelcontextprotocol/server-everything ]]; then
    (cd tests/mcp && npm ci --no-audit --no-fund --silent)
fi
echo "server-everything $(node -p 'require("./tests/mcp/node_modules/@modelcontextprotocol/server-everything/package.json").version'), $("$FACIO_TEST_PYTHON" -c 'import importlib.metadata as m; print("mcp", m.version("mcp"))')"

# --- Helm chart and Kubernetes manifests (helm/facio, k8s/, Dockerfile) ---
section "Helm chart and Kubernetes manifests"
CHART_VENV="$ROOT/target/chart-venv"
if [[ ! -x "$CHART_VENV/bin/python" ]] \
    || ! cmp -s tests/chart/requirements.txt "$CHART_VENV/requirements.txt"; then
    rm -rf "$CHART_VENV"
    python3 -m venv "$CHART_VENV"
    "$CHART_VENV/bin/pip" install -q -r tests/chart/requirements.txt
    cp tests/chart/requirements.txt "$CHART_VENV/requirements.txt"
fi
cargo build --quiet -p facio --bin facio   # Facio itself checks the rendered config.json
"$CHART_VENV/bin/python" tests/chart/check.py
# --- end of Helm chart and Kubernetes manifests ---

section "cargo fmt --check"
cargo fmt --all --check

section "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

section "build binaries"
cargo build --quiet -p facio --bin facio -p facio-tests --bins

section "cargo test"
cargo test --workspace --quiet

section "all green"
