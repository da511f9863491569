#!/usr/bin/env bash
# Runs real Kinto clients against kintogo:
#   - kinto-http.py: its own functional test suite (from its source
#     distribution on PyPI), against kintogo started with the suite's own
#     tests/config/kinto.ini;
#   - kinto-wizard: its own functional suite, and a dump --full / load
#     round trip with attachments (clients/wizard/roundtrip.py);
#   - content signatures across implementations (scripts/signer-interop.sh);
#   - canonicaljson-rs: fresh random vectors of canonical JSON against
#     kintogo's serializer of signed collections;
#   - the npm clients kinto-http and kinto (offline sync), and the
#     WHATWG EventSource (npm eventsource) on the changes stream: clients/js.
# Fails on any failure but the known ones, listed in README.md.
# Needs python3 (with venv) and npm; installs the clients in .clients/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${CLIENTS_CACHE:-$here/.clients}
port=8888 # kinto-http.py's tests hard-code http://localhost:8888/v1
mkdir -p "$cache"
work=$(mktemp -d)
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap 'stop; rm -rf "$work"' EXIT

if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
  echo "port $port is in use: stop what listens there first" >&2
  exit 1
fi
(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo)

start() { # extra env assignments...
  mkdir -p "$work/run" && rm -f "$work/run"/*.db*
  (cd "$work/run" && exec env "$@" "$work/kintogo" start --port "$port" >>"$work/server.log" 2>&1) &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && return 0; sleep 0.1; done
  cat "$work/server.log" >&2
  exit 1
}

# summarize TITLE JUNIT_XML: prints passed and failed tests, fails on any
# failure (or on no test at all).
summarize() {
  python3 - "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
passed, failed = 0, []
for case in ET.parse(sys.argv[2]).iter("testcase"):
    if case.find("skipped") is not None:
        continue
    if case.find("failure") is not None or case.find("error") is not None:
        failed.append(case.get("classname") + "::" + case.get("name"))
    else:
        passed += 1
print("%s: %d passed, %d failed" % (sys.argv[1], passed, len(failed)))
if failed or passed == 0:
    print("failures:", *failed, sep="\n  ")
    sys.exit(1)
PY
}

# --- kinto-http.py -----------------------------------------------------
KINTO_HTTP_VERSION=11.11.0
py="$cache/py"
if [ ! -x "$py/bin/pytest" ] || [ ! -d "$cache/kinto_http-$KINTO_HTTP_VERSION" ]; then
  python3 -m venv "$py"
  "$py/bin/pip" install -q "kinto-http==$KINTO_HTTP_VERSION" pytest==9.2.0 pytest-asyncio==1.5.0 pytest-mock==3.17.0 requests==2.34.2
  "$py/bin/pip" download -q --no-deps --no-binary :all: "kinto-http==$KINTO_HTTP_VERSION" -d "$cache"
  tar xzf "$cache/kinto_http-$KINTO_HTTP_VERSION.tar.gz" -C "$cache"
fi
suite="$cache/kinto_http-$KINTO_HTTP_VERSION"
mkdir -p "$work/run" && rm -f "$work/run"/*.db*
# With the suite's own settings (its attachments go to /tmp, as the file
# says).
(cd "$work/run" && exec "$work/kintogo" start --ini "$suite/tests/config/kinto.ini" --bind 127.0.0.1 --port "$port" >"$work/server.log" 2>&1) &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && break; sleep 0.1; done
set +e
(cd "$suite" && "$py/bin/pytest" -q -p no:cacheprovider --junitxml="$work/py.xml" tests/test_functional.py tests/test_functional_async.py >"$work/py.log" 2>&1)
set -e
stop
summarize "kinto-http.py $KINTO_HTTP_VERSION functional suite" "$work/py.xml"

# --- kinto-wizard ----------------------------------------------------------
# Its own functional suite, against kintogo started with the suite's own
# tests/kinto.ini, whose attachments base_url is a static server on 9999 over
# its base_path (as the suite's Makefile runs it); then a dump --full / load
# round trip with attachments served by kintogo itself
# (clients/wizard/roundtrip.py). kinto-wizard needs Python >= 3.12.
KINTO_WIZARD_VERSION=6.0.1
wpy=""
for c in python3.13 python3.12 $(ls -d /root/.pyenv/versions/3.1[2-9]*/bin/python 2>/dev/null) python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then wpy=$c; break; fi
done
[ -n "$wpy" ] || { echo "kinto-wizard needs Python >= 3.12: none found" >&2; exit 1; }
wz="$cache/wizard"
if [ ! -x "$wz/bin/kinto-wizard" ] || [ ! -d "$cache/kinto_wizard-$KINTO_WIZARD_VERSION" ]; then
  "$wpy" -m venv "$wz"
  "$wz/bin/pip" install -q "kinto-wizard==$KINTO_WIZARD_VERSION" "kinto-http==$KINTO_HTTP_VERSION" pytest==9.2.0
  "$wz/bin/pip" download -q --no-deps --no-binary :all: "kinto-wizard==$KINTO_WIZARD_VERSION" -d "$cache"
  tar xzf "$cache/kinto_wizard-$KINTO_WIZARD_VERSION.tar.gz" -C "$cache"
fi
wsuite="$cache/kinto_wizard-$KINTO_WIZARD_VERSION"
files=/tmp/server/attachments # the suite's kinto.attachment.base_path
rm -rf "$files" && mkdir -p "$files"
(cd "$files" && exec python3 -m http.server --bind 127.0.0.1 9999 >"$work/static.log" 2>&1) &
static=$!
trap 'stop; kill "$static" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/run" && rm -f "$work/run"/*.db*
(cd "$work/run" && exec "$work/kintogo" start --ini "$wsuite/tests/kinto.ini" --bind 127.0.0.1 --port "$port" >"$work/server.log" 2>&1) &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && break; sleep 0.1; done
set +e
(cd "$wsuite" && "$wz/bin/pytest" -q -p no:cacheprovider --junitxml="$work/wizard.xml" tests/test_functional.py >"$work/wizard.log" 2>&1)
set -e
stop
summarize "kinto-wizard $KINTO_WIZARD_VERSION functional suite" "$work/wizard.xml"
start KINTO_INCLUDES="kinto.plugins.flush kinto_attachment" KINTO_MULTIAUTH_POLICIES=basicauth \
  KINTO_USERID_HMAC_SECRET=clients-test KINTO_BUCKET_CREATE_PRINCIPALS=system.Authenticated
mkdir -p "$work/wizard"
"$wz/bin/python" "$here/clients/wizard/roundtrip.py" "http://127.0.0.1:$port/v1" "$work/wizard"
stop

# --- canonicaljson-rs ---------------------------------------------------------
# What Remote Settings signs is canonicaljson-rs's serialization: fresh
# random vectors from it (a new seed each run) against internal/contentsig.
CANONICALJSON_RS_VERSION=0.9.3
"$wz/bin/pip" install -q "canonicaljson-rs==$CANONICALJSON_RS_VERSION"
seed=$RANDOM$RANDOM
"$wz/bin/python" "$here/clients/canonicaljson/vectors.py" 20000 "$seed" >"$work/vectors.jsonl"
echo "canonicaljson-rs $CANONICALJSON_RS_VERSION vectors (20000, seed $seed):"
(cd "$here" && KINTOGO_CANONICAL_VECTORS="$work/vectors.jsonl" go test -count=1 -run 'TestCanonicalVectors' ./internal/contentsig/)

# --- the reference Kinto ------------------------------------------------------
# PyPI kinto 26.5.0 with the remote-settings plugins (../shared/bench/
# ref-setup.sh), installed once in the cache: the signer's interop and the
# authorization lockstep run it beside kintogo.
shared=${SHARED_DIR:-$here/../shared}
if [ -z "${REF_VENV:-}" ] && [ -x "$shared/bench/ref-setup.sh" ]; then
  if [ -x "$cache/reference/venv/bin/kinto" ] || "$shared/bench/ref-setup.sh" "$cache/reference" >"$work/ref-setup.log" 2>&1; then
    export REF_VENV="$cache/reference/venv"
  else
    echo "the reference Kinto could not be installed (see ref-setup.sh): its checks are skipped" >&2
    tail -5 "$work/ref-setup.log" >&2
  fi
fi

# --- authorization, in lockstep with the reference -----------------------------
# Random sequences of users, groups and permissions played on kintogo and
# on the reference: every answer must be the same (scripts/authz-lockstep.sh).
if [ -n "${REF_VENV:-}" ]; then
  "$here/scripts/authz-lockstep.sh" "$REF_VENV" 300
else
  echo "authorization lockstep skipped: no reference Kinto"
fi

# --- content signatures ---------------------------------------------------------
# autograph-utils (what Remote Settings clients verify with) and the
# reference's verifier check kintogo's signatures, and kintogo's verifier
# the reference's (scripts/signer-interop.sh).
"$wz/bin/pip" install -q autograph-utils==1.0.1 aiohttp==3.14.5
"$here/scripts/signer-interop.sh" "$wz/bin/python"

# --- npm kinto-http and kinto ---------------------------------------------
(cd "$here/clients/js" && npm ci --no-audit --no-fund --silent)
start KINTO_INCLUDES="kinto.plugins.default_bucket kinto.plugins.history kinto.plugins.accounts kinto.plugins.flush kinto_changes" \
  KINTO_MULTIAUTH_POLICIES="account basicauth" KINTO_ACCOUNT_CREATE_PRINCIPALS=system.Everyone KINTO_USERID_HMAC_SECRET=clients-test \
  KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT=true KINTO_CHANGES_RESOURCES=/buckets/main KINTO_PUSH_MAX_STREAM_SECONDS=2
(cd "$here/clients/js" && KINTO_SERVER="http://127.0.0.1:$port/v1" npm test --silent)
stop
