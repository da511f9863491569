#!/usr/bin/env bash
# Load benchmark of the changes feed, in one run on this machine:
#   - kintogo (SQLite), 100 monitored collections with one record each;
#   - the reference Kinto (PyPI: kinto + kinto-changes, memory backends, its
#     fastest configuration) with the same data, unless --no-reference;
#   - a bare net/http handler serving kintogo's answer bytes (the ceiling).
# Each is driven by wrk with the same settings on two URLs: the monitor
# list, and a per-collection changeset with _since. Traffic stays on
# 127.0.0.1 and every run is bounded in time.
#
#   bench/changes.sh [--no-reference] [duration=10s] [connections=32]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
reference=1
if [ "${1:-}" = "--no-reference" ]; then reference=0; shift; fi
duration=${1:-10s}
conns=${2:-32}
kport=18888 rport=18877 bport=18899 bport2=18898
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

wait_up() { for _ in $(seq 150); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }

(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo && go build -o "$work/bare" ./bench/bare)
(cd "$work" && KINTO_INCLUDES=kinto_changes KINTO_MULTIAUTH_POLICIES=basicauth \
  KINTO_CHANGES_RESOURCES=/buckets/main KINTO_HTTP_HOST=bench.example.com \
  KINTO_STORAGE_URL="$work/bench.db" exec ./kintogo start --port "$kport" 2>"$work/kintogo.log") &
pids+=($!)

if [ "$reference" = 1 ]; then
  venv=${KINTO_VENV:-$here/bench/.venv}
  if [ ! -x "$venv/bin/kinto" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kinto kinto-changes cornice
  fi
  cat >"$work/kinto.ini" <<INI
[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = $rport

[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.permission_backend = kinto.core.permission.memory
kinto.cache_backend = kinto.core.cache.memory
kinto.includes = kinto_changes
multiauth.policies = basicauth
kinto.changes.resources = /buckets/main
kinto.http_host = bench.example.com

[loggers]
keys = root
[handlers]
keys = console
[formatters]
keys = generic
[logger_root]
level = WARN
handlers = console
[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = WARN
formatter = generic
[formatter_generic]
format = %(message)s
INI
  (cd "$work" && exec "$venv/bin/kinto" start --ini "$work/kinto.ini" 2>"$work/kinto.log") &
  pids+=($!)
fi

populate() { # base
  curl -sf -u bench:pw -X PUT -H 'Content-Type: application/json' \
    -d '{"permissions": {"read": ["system.Everyone"]}}' "$1/buckets/main" >/dev/null
  for i in $(seq 1 100); do
    curl -sf -u bench:pw -X PUT "$1/buckets/main/collections/c$i" >/dev/null
    curl -sf -u bench:pw -H 'Content-Type: application/json' -d '{"data":{"n":1}}' \
      "$1/buckets/main/collections/c$i/records" >/dev/null
  done
  # A collection of 50 records for the changeset; _since keeps the last 10.
  for i in $(seq 1 50); do
    curl -sf -u bench:pw -H 'Content-Type: application/json' -d "{\"data\":{\"n\":$i,\"title\":\"record $i\"}}" \
      "$1/buckets/main/collections/c1/records" >/dev/null
  done
}
since_of() { # base: the timestamp of the 40th newest record of c1
  curl -sf "$1/buckets/main/collections/c1/records?_sort=-last_modified&_limit=11&_fields=id" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][10]["last_modified"])'
}

kbase="http://127.0.0.1:$kport/v1"
wait_up "$kbase/__lbheartbeat__"
populate "$kbase"
monitor_path="/buckets/monitor/collections/changes/records"
ksince=$(since_of "$kbase")
changeset_path="/buckets/main/collections/c1/changeset?_expected=0&_since=%22$ksince%22"
curl -sf "$kbase$monitor_path" >"$work/monitor.json"
curl -sf "$kbase$changeset_path" >"$work/changeset.json"
entries=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$work/monitor.json")
changes=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["changes"]))' "$work/changeset.json")
[ "$entries" = 100 ] && [ "$changes" = 10 ] || { echo "unexpected data: $entries entries, $changes changes" >&2; exit 1; }
"$work/bare" --port "$bport" --body "$work/monitor.json" &
pids+=($!)
"$work/bare" --port "$bport2" --body "$work/changeset.json" &
pids+=($!)
wait_up "http://127.0.0.1:$bport/"
wait_up "http://127.0.0.1:$bport2/"
if [ "$reference" = 1 ]; then
  rbase="http://127.0.0.1:$rport/v1"
  wait_up "$rbase/__heartbeat__"
  populate "$rbase"
  rsince=$(since_of "$rbase")
  rchangeset_path="/buckets/main/collections/c1/changeset?_expected=0&_since=%22$rsince%22"
  n=$(curl -sf "$rbase$rchangeset_path" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["changes"]))')
  [ "$n" = 10 ] || { echo "reference changeset has $n changes" >&2; exit 1; }
fi

run() { # name url
  local out rps p50 p99 errors
  out=$(wrk -t2 -c"$conns" -d"$duration" --latency "$2")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-22s %10s req/s   p50 %9s   p99 %9s%s\n' "$1" "$rps" "$p50" "$p99" "${errors:+   non-2xx: $errors}"
  echo "$rps" >"$work/$1.rps"
}
echo "wrk -t2 -c$conns -d$duration; monitor of $entries collections ($(wc -c <"$work/monitor.json") bytes); changeset of $changes records ($(wc -c <"$work/changeset.json") bytes)"
run monitor-bare "http://127.0.0.1:$bport/"
run monitor-kintogo "$kbase$monitor_path"
[ "$reference" = 1 ] && run monitor-kinto "$rbase$monitor_path"
run changeset-bare "http://127.0.0.1:$bport2/"
run changeset-kintogo "$kbase$changeset_path"
[ "$reference" = 1 ] && run changeset-kinto "$rbase$rchangeset_path"
python3 - "$work" "$reference" <<'PY'
import os, sys
w, ref = sys.argv[1], sys.argv[2] == "1"
r = lambda n: float(open(os.path.join(w, n + ".rps")).read())
for what in ("monitor", "changeset"):
    line = "%-10s kintogo = %5.1f%% of bare net/http" % (what, 100 * r(what + "-kintogo") / r(what + "-bare"))
    if ref:
        line += ", %6.1fx the reference Kinto" % (r(what + "-kintogo") / r(what + "-kinto"))
    print(line)
PY
