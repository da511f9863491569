#!/usr/bin/env bash
# Load benchmark of the changes monitor: kintogo (SQLite, 100 monitored
# collections) next to a bare net/http handler serving the same bytes, in
# one run, with the same wrk settings. Traffic stays on 127.0.0.1 and every
# run is bounded in time.
#
#   bench/monitor.sh [duration, default 10s] [connections, default 32]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-10s}
conns=${2:-32}
threads=2
kport=${KINTOGO_PORT:-18888}
bport=${BARE_PORT:-18899}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo && go build -o "$work/bare" ./bench/bare)
export KINTO_INCLUDES="kinto_changes" KINTO_MULTIAUTH_POLICIES="basicauth" \
  KINTO_CHANGES_RESOURCES="/buckets/main" KINTO_HTTP_HOST="bench.example.com" \
  KINTO_STORAGE_URL="$work/bench.db"
(cd "$work" && exec ./kintogo start --port "$kport" 2>"$work/kintogo.log") &
pids+=($!)
base="http://127.0.0.1:$kport/v1"
for _ in $(seq 100); do curl -sf "$base/__lbheartbeat__" >/dev/null && break; sleep 0.1; done

curl -sf -u bench:pw -X PUT "$base/buckets/main" >/dev/null
for i in $(seq 1 100); do
  curl -sf -u bench:pw -X PUT "$base/buckets/main/collections/c$i" >/dev/null
  curl -sf -u bench:pw -X POST -H 'Content-Type: application/json' -d '{"data":{"n":1}}' \
    "$base/buckets/main/collections/c$i/records" >/dev/null
done
monitor="$base/buckets/monitor/collections/changes/records"
curl -sf "$monitor" >"$work/monitor.json"
entries=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$work/monitor.json")
[ "$entries" = 100 ] || { echo "expected 100 monitor entries, got $entries" >&2; exit 1; }
"$work/bare" --port "$bport" --body "$work/monitor.json" &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$bport/" >/dev/null && break; sleep 0.1; done

run() { # name url
  local out
  out=$(wrk -t"$threads" -c"$conns" -d"$duration" --latency "$2")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-28s %12s req/s   p50 %8s   p99 %8s\n' "$1" "$rps" "$p50" "$p99"
  echo "$rps" >"$work/$1.rps"
}
echo "monitor list of $entries collections ($(wc -c <"$work/monitor.json") bytes), wrk -t$threads -c$conns -d$duration"
run bare-net-http "http://127.0.0.1:$bport/"
run kintogo-monitor "$monitor"
since=$(( $(date +%s) * 1000 - 3600000 ))
run kintogo-monitor-since "$monitor?_since=$since&_expected=0"
python3 - "$work" <<'PY'
import sys, os
w = sys.argv[1]
r = lambda n: float(open(os.path.join(w, n + ".rps")).read())
print("kintogo monitor / bare net/http: %.1f%%" % (100 * r("kintogo-monitor") / r("bare-net-http")))
PY
