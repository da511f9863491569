#!/usr/bin/env bash
# Firefox itself syncs from kintogo (clients/firefox/firefox_sync.py):
# Debian's firefox-esr (at $FIREFOX or /usr/bin/firefox-esr), headless,
# driven through Marionette (PyPI marionette-driver, installed in
# .clients/firefox), verifying the signatures of a kintogo whose signer
# key is issued under Autograph's development intermediate
# (internal/contentsig/testdata/autograph-dev), the chain Firefox trusts
# for a server on 127.0.0.1.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
firefox=${FIREFOX:-/usr/bin/firefox-esr}
if [ ! -x "$firefox" ]; then
  if [ "${KINTOGO_BROWSER_TESTS:-}" = required ]; then
    echo "Firefox test: no Firefox at $firefox (apt-get install firefox-esr)" >&2
    exit 1
  fi
  echo "Firefox test skipped: no Firefox at $firefox (apt-get install firefox-esr)"
  exit 0
fi
issuer="$here/internal/contentsig/testdata/autograph-dev"
if [ "$(date -u +%Y%m%d%H%M)" -ge 202903211645 ]; then
  echo "Firefox test: Autograph's development intermediate (csinter1553186747) expired on 2029-03-21;" \
    "take the newer one from mozilla-services/autograph's autograph-signer.yaml into $issuer (see its README.md)" >&2
  exit 1
fi
venv=${CLIENTS_CACHE:-$here/.clients}/firefox
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import marionette_driver' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q marionette-driver==3.7.1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo)
FIREFOX="$firefox" "$venv/bin/python" "$here/clients/firefox/firefox_sync.py" "$work/kintogo" \
  "$issuer/issuer.pem" "$issuer/issuer-key.pem" >"$work/firefox.log" 2>&1 || { cat "$work/firefox.log" >&2; exit 1; }
grep -E '^(ok|Firefox:) ' "$work/firefox.log"
