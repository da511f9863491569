#!/usr/bin/env bash
# Starts kintogo with the settings of ../shared/conformance/README.md on a
# throw-away database, replays the recorded Kinto answers against it, and
# stops it. The server runs from a settings file written by `kintogo init`,
# with the recording's settings as environment overrides: so the replay
# also checks that init's file serves Kinto's API as recorded. Usage: scripts/conformance.sh [run.py arguments, e.g. --scenario errors]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DIR:-$here/../shared}
port=${CONFORMANCE_PORT:-8888}
work=$(mktemp -d)
pid=""
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

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
python3 "$shared/conformance/run.py" --base "http://127.0.0.1:$port/v1" "$@"
