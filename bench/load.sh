#!/usr/bin/env bash
# Load benchmark of the partner API with a real load generator (wrk), on SQLite and PostgreSQL:
#   GET …/users/{id}/electric-vehicles  (a user with 5 EVs)   and   POST /oauth2/token/
# Loopback only, bounded in time. Usage: bench/load.sh [seconds] [connections]
# PostgreSQL: set BENCH_POSTGRES_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/test); a database
# voltplan_bench is (re)created there. Set BENCH_SKIP_POSTGRES=1 to run SQLite only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNECTIONS=${2:-32}
PORT=${BENCH_PORT:-18080}
BASE="http://127.0.0.1:$PORT"
ADMIN_URL=${BENCH_POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p voltplan
BIN=target/release/voltplan
WORK=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

field() { sed -n "s/^$1 *: \([^ ]*\).*/\1/p" "$WORK/server.out" | head -1; }
json_field() { sed -E "s/.*\"$1\": *\"([^\"]+)\".*/\1/"; }

bench_one() {
  local label=$1 url=$2
  VOLTPLAN_LOG=warn "$BIN" serve --bind "127.0.0.1:$PORT" --database-url "$url" >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
  local org client secret token user
  org=$(field "Organisation id"); client=$(field "Client id"); secret=$(field "Client secret")
  token=$(curl -s -X POST "$BASE/oauth2/token/" -u "$client:$secret" -H 'Content-Type: application/json' \
    -d '{"grant_type": "client_credentials"}' | json_field access_token)
  user=$(curl -s -X POST "$BASE/api/partners/v2.0/org/$org/users" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"role": "user", "email": "bench@example.com", "first_name": "Bench"}' | json_field id)
  for i in 1 2 3 4 5; do
    curl -s -o /dev/null -X POST "$BASE/api/partners/v2.0/org/$org/users/$user/electric-vehicles" \
      -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"comment\": \"car $i\", \"battery_capacity_kwh\": \"7$i.5\", \"price_zone\": \"DE_LU\"}"
  done
  local evs="$BASE/api/partners/v2.0/org/$org/users/$user/electric-vehicles"
  [ "$(curl -s "$evs" -H "Authorization: Bearer $token" | grep -o '"id":' | wc -l)" -ge 5 ] || { echo "setup failed" >&2; exit 1; }

  echo "== $label: GET electric-vehicles (5 EVs), $CONNECTIONS connections, ${DURATION}s"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$evs" | summarize

  local basic
  basic=$(printf '%s:%s' "$client" "$secret" | base64 -w0)
  cat >"$WORK/token.lua" <<LUA
wrk.method = "POST"
wrk.body   = '{"grant_type": "client_credentials"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic $basic"
LUA
  echo "== $label: POST /oauth2/token/, $CONNECTIONS connections, ${DURATION}s"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/token.lua" "$BASE/oauth2/token/" | summarize
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

# Keeps wrk's throughput, percentiles and error lines.
summarize() { grep -E "Requests/sec|^ +(50|75|90|99)%|Non-2xx|Socket errors|requests in"; }

bench_one "SQLite" "sqlite:$WORK/bench.db"
if [ "${BENCH_SKIP_POSTGRES:-0}" != 1 ]; then
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS voltplan_bench WITH (FORCE)" -c "CREATE DATABASE voltplan_bench" >/dev/null
  bench_one "PostgreSQL" "${ADMIN_URL%/*}/voltplan_bench"
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS voltplan_bench WITH (FORCE)" >/dev/null
fi
