#!/usr/bin/env bash
# Event streams under load: N subscribers (default 10,000) on the changes
# monitor of one kintogo node (SQLite), one write per second; reports the
# delivery latency and the server's memory per subscriber. Loopback only,
# bounded (about writes + 10 seconds).
#
#   bench/push.sh [subscribers=10000] [writes=20]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000}
writes=${2:-20}
port=18855
ulimit -n "$(ulimit -Hn)" # each side holds one descriptor per subscriber
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 500)) ]; then
  echo "open files limited to $(ulimit -n): too few for $n subscribers" >&2
  exit 1
fi
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo && go build -o "$work/sse" ./bench/sse)
(cd "$work" && KINTO_INCLUDES=kinto_changes KINTO_MULTIAUTH_POLICIES=basicauth KINTO_CHANGES_RESOURCES=/buckets/main \
  KINTO_STORAGE_URL="$work/push.db" KINTO_PUSH_MAX_STREAMS=$((n + 100)) exec ./kintogo start --port "$port" 2>"$work/kintogo.log") &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && break; sleep 0.1; done
"$work/sse" -base "http://127.0.0.1:$port/v1" -n "$n" -writes "$writes" -pid "$pid"
