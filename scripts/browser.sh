#!/usr/bin/env bash
# kintogo's pages in a real browser: the admin UI and the live view of the
# changes feed (clients/browser), in headless Chromium (Debian's chromium
# package, at $CHROMIUM or /usr/bin/chromium) driven by playwright-core.
# The server is started as a newcomer starts it, with no configuration,
# from the repository (where scripts/admin.sh installs the admin UI), and
# its administrator is created by `kintogo create-user` while it runs.
# Screenshots land in $SCREENSHOTS (default .clients/screenshots).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "${KINTOGO_BROWSER_TESTS:-}" = required ]; then
    echo "browser tests: no Chromium at $chromium (apt-get install chromium)" >&2
    exit 1
  fi
  echo "browser tests skipped: no Chromium at $chromium (apt-get install chromium)"
  exit 0
fi
shots=${SCREENSHOTS:-$here/.clients/screenshots}
mkdir -p "$shots"
work=$(mktemp -d)
pid=""
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$here/scripts/admin.sh"
(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export KINTO_STORAGE_URL="$work/browser.db"
# With a Keycloak (scripts/keycloak.sh prints its issuer), kinto-admin's
# OpenID Connect login too.
if [ -n "${KINTOGO_TEST_OIDC_ISSUER:-}" ]; then
  export KINTO_MULTIAUTH_POLICIES="account keycloak" \
    KINTO_MULTIAUTH_POLICY_KEYCLOAK_USE=kinto.plugins.openid.OpenIDConnectPolicy \
    KINTO_MULTIAUTH_POLICY_KEYCLOAK_ISSUER="$KINTOGO_TEST_OIDC_ISSUER" \
    KINTO_MULTIAUTH_POLICY_KEYCLOAK_CLIENT_ID=kinto \
    KINTO_MULTIAUTH_POLICY_KEYCLOAK_CLIENT_SECRET=kinto-client-secret
elif [ "${KINTOGO_BROWSER_TESTS:-}" = required ]; then
  echo "browser tests: KINTOGO_TEST_OIDC_ISSUER is not set (scripts/keycloak.sh starts Keycloak and prints it)" >&2
  exit 1
fi
(cd "$here" && exec env -u KINTO_INI "$work/kintogo" start --port "$port" >"$work/server.log" 2>&1) &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v1/__lbheartbeat__" >/dev/null && break; sleep 0.1; done
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
echo "$password" | (cd "$here" && env -u KINTO_INI "$work/kintogo" create-user --username admin)
(cd "$here/clients/browser" && npm ci --no-audit --no-fund --silent)
(cd "$here/clients/browser" && KINTO_OIDC_ISSUER="${KINTOGO_TEST_OIDC_ISSUER:-}" CHROMIUM="$chromium" KINTO_SERVER="http://127.0.0.1:$port/v1" KINTO_ADMIN="admin:$password" \
  SCREENSHOTS="$shots" npm test --silent) || { cat "$work/server.log" >&2; exit 1; }
echo "browser tests passed; screenshots in $shots"
