#!/usr/bin/env bash
# Record creation throughput: wrk with 16 connections POSTing records into
# one collection of kintogo on SQLite, then on PostgreSQL (when
# KINTOGO_BENCH_POSTGRES names a database, e.g. the DSN printed by
# scripts/postgres.sh with another database name). Loopback only, bounded.
#
#   bench/writes.sh [duration=10s]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-10s}
port=18866
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo)
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"data": {"title": "a record", "n": 42, "tags": ["x", "y"]}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic YmVuY2g6cHc="
LUA
run() { # name, env...
  local name=$1
  shift
  (cd "$work" && exec env "$@" KINTO_MULTIAUTH_POLICIES=basicauth KINTO_INCLUDES=kinto.plugins.flush \
    ./kintogo start --port "$port" 2>"$work/$name.log") &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && break; sleep 0.1; done
  curl -sf -X POST "http://127.0.0.1:$port/v1/__flush__" >/dev/null
  curl -sf -u bench:pw -X PUT "http://127.0.0.1:$port/v1/buckets/b" >/dev/null
  curl -sf -u bench:pw -X PUT "http://127.0.0.1:$port/v1/buckets/b/collections/c" >/dev/null
  local out
  out=$(wrk -t2 -c16 -d"$duration" --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/buckets/b/collections/c/records")
  printf '%-12s %10s records/s   p50 %9s   p99 %9s%s\n' "$name" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx/ {print "   non-2xx: " $NF}' <<<"$out")"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}
echo "wrk -t2 -c16 -d$duration, POST /v1/buckets/b/collections/c/records"
run sqlite KINTO_STORAGE_BACKEND=sqlite KINTO_STORAGE_URL="$work/bench.db"
if [ -n "${KINTOGO_BENCH_POSTGRES:-}" ]; then
  (cd "$work" && KINTO_STORAGE_BACKEND=postgresql KINTO_STORAGE_URL="$KINTOGO_BENCH_POSTGRES" ./kintogo migrate 2>/dev/null)
  run postgresql KINTO_STORAGE_BACKEND=postgresql KINTO_STORAGE_URL="$KINTOGO_BENCH_POSTGRES"
fi
