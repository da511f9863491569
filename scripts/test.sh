#!/usr/bin/env bash
# kintogo's test suite: formatting, vet, every Go test (unit, storage
# conformance on memory and SQLite, HTTP scenarios over the real handler
# stack, the kintogo command end to end), the test suites of real Kinto
# clients (scripts/clients.sh), the pages in a real browser
# (scripts/browser.sh), Firefox syncing from kintogo (scripts/firefox.sh),
# then the replay of the answers
# recorded from the reference Kinto (../shared/conformance), every
# scenario.
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# A real SMTP server for the e-mail tests: aiosmtpd from PyPI, in a venv
# (the tests start clients/smtpd/smtpd.py with its Python).
if [ -z "${KINTOGO_TEST_SMTPD:-}" ]; then
  smtpd_venv=${CLIENTS_CACHE:-.clients}/smtpd
  if [ ! -x "$smtpd_venv/bin/python" ] || ! "$smtpd_venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m venv "$smtpd_venv"
    "$smtpd_venv/bin/pip" install -q aiosmtpd==1.4.6
  fi
  KINTOGO_TEST_SMTPD=$(cd "$smtpd_venv" && pwd)/bin/python
  export KINTOGO_TEST_SMTPD
fi
env -u KINTOGO_TEST_POSTGRES go test -count=1 ./...
# The same tests on PostgreSQL, one package at a time since they share
# the database: every package whose tests open it (directly or through
# storetest, which adds PostgreSQL to the backends when the DSN is set).
if [ -n "${KINTOGO_TEST_POSTGRES:-}" ]; then
  pg_packages=$(grep -l -e KINTOGO_TEST_POSTGRES -e 'internal/storage/storetest"' $(git ls-files '*_test.go') |
    xargs -n1 dirname | sort -u | sed 's|^|./|')
  go test -count=1 -p 1 $pg_packages
else
  echo "PostgreSQL tests skipped: set KINTOGO_TEST_POSTGRES (scripts/postgres.sh prints a DSN)"
fi

# The release binaries: the four platforms build, and the linux/amd64 one
# says its version and serves.
if [ "${SKIP_RELEASE:-}" != 1 ]; then
  scripts/release.sh ci >/dev/null
  bin=dist/kintogo-ci-linux-amd64
  "$bin" version | grep -q "kintogo ci (commit" || { echo "release binary: $("$bin" version)" >&2; exit 1; }
  rel=$(mktemp -d)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  (cd "$rel" && exec "$OLDPWD/$bin" start --port "$port" >"$rel/log" 2>&1) &
  relpid=$!
  served=""
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/" >/dev/null && { served=1; break; }; sleep 0.1; done
  kill "$relpid"; wait "$relpid" 2>/dev/null || true
  rm -rf "$rel"
  [ -n "$served" ] || { echo "the release binary did not serve" >&2; exit 1; }
  echo "release binaries: linux and darwin, amd64 and arm64, built; linux/amd64 serves"
fi

# Real Kinto clients (kinto-http.py's own suite, the npm clients).
if [ "${SKIP_CLIENTS:-}" = 1 ]; then
  echo "client suites skipped (SKIP_CLIENTS=1)"
else
  scripts/clients.sh
  # The admin UI and the live view in headless Chromium.
  scripts/browser.sh
  # Firefox syncing signed collections, verifying their signatures.
  scripts/firefox.sh
fi

# Every scenario of the conformance corpus (the answers recorded from the
# reference Kinto) must pass.
shared=${SHARED_DIR:-../shared}
if [ ! -f "$shared/conformance/run.py" ]; then
  echo "conformance replay skipped: $shared/conformance/run.py not found (set SHARED_DIR)"
  exit 0
fi
scripts/conformance.sh
