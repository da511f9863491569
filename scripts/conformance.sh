#!/usr/bin/env bash
# Starts kintogo with the settings of ../shared/conformance/README.md on a
# throw-away database, replays the recorded Kinto answers against it, and
# stops it. The server runs from a settings file written by `kintogo init`,
# with the recording's settings as environment overrides: so the replay
# also checks that init's file serves Kinto's API as recorded. Then, with
# no arguments, the signer's own scenario (conformance/signer: recorded from
# the reference Kinto 26.5 with the remote-settings plugins, both signing
# through the Autograph test server) and its capability.
# Usage: scripts/conformance.sh [run.py arguments, e.g. --scenario errors]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$here/../shared}
port=${CONFORMANCE_PORT:-8888}
work=$(mktemp -d)
pid=""
agpid=""
trap 'kill $pid $agpid 2>/dev/null || true; wait $pid $agpid 2>/dev/null || true; rm -rf "$work"' EXIT

if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
  echo "port $port is in use: stop what listens there first" >&2
  exit 1
fi
(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo)
export KINTO_INCLUDES="kinto.plugins.admin kinto.plugins.accounts kinto.plugins.history kinto.plugins.flush kinto_remote_settings.changes"
export KINTO_MULTIAUTH_POLICIES="account basicauth"
export KINTO_USERID_HMAC_SECRET="b1d9a3a1bc6c4ad1f5e4b9bb3e1c3a1e0e1f3c6a2d8b7c4e5f6a7b8c9d0e1f2a"
export KINTO_BUCKET_CREATE_PRINCIPALS="system.Authenticated"
export KINTO_ACCOUNT_CREATE_PRINCIPALS="system.Everyone"
export KINTO_ACCOUNT_WRITE_PRINCIPALS="account:admin"
export KINTO_CHANGES_RESOURCES="/buckets/main /buckets/blocklists"
export KINTO_HTTP_HOST="127.0.0.1:8888"
export KINTO_HTTP_SCHEME="http"
export KINTO_CHANGES_EMPTY_200_ON_NOT_MODIFIED="true"
export KINTO_STORAGE_URL="$work/conformance.db"
(cd "$work" && ./kintogo init --ini "$work/kinto.ini" >/dev/null)
(cd "$work" && exec ./kintogo start --ini "$work/kinto.ini" --port "$port" 2>"$work/server.log" >/dev/null) &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && break
  sleep 0.1
done
status=0
python3 "$shared/conformance/run.py" --base "http://127.0.0.1:$port/v1" "$@" || status=$?
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
[ $# -eq 0 ] || exit $status

# --- the signer ---------------------------------------------------------
(cd "$here" && go build -o "$work/autograph" ./clients/signer/autograph)
"$work/autograph" -listen 127.0.0.1:8000 -fixed fixed-signature-for-recordings 2>"$work/autograph.log" &
agpid=$!
mkdir -p "$work/signer"
# Only the scenario's settings: none of the KINTO_* exported above.
(cd "$work/signer" && exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" "$work/kintogo" start \
  --ini "$here/conformance/signer/kinto.ini" --port "$port" 2>"$work/signer.log" >/dev/null) &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && break
  sleep 0.1
done
python3 "$shared/conformance/run.py" --base "http://127.0.0.1:$port/v1" --dir "$here/conformance/signer" || status=$?
python3 - "http://127.0.0.1:$port/v1/" "$here/conformance/signer/capability.json" <<'PY' || status=$?
import json, sys, urllib.request
got = json.load(urllib.request.urlopen(sys.argv[1]))["capabilities"]["signer"]
want = json.load(open(sys.argv[2]))
if got != want:
    print("FAIL signer capability:\n  want %s\n  got  %s" % (json.dumps(want, sort_keys=True), json.dumps(got, sort_keys=True)))
    sys.exit(1)
print("PASS signer capability")
PY
exit $status
