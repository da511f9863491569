#!/usr/bin/env bash
# Starts Keycloak (the OpenID Connect provider, from Maven Central's
# org.keycloak:keycloak-quarkus-dist, cached in .clients/keycloak) in dev
# mode on a free port of 127.0.0.1, with the realm "kinto" of
# clients/keycloak/realm.json (client kinto, user ana), and prints its
# issuer URL once it answers. It runs until `scripts/keycloak.sh stop`.
# Needs a Java >= 21 ($JAVA_HOME, else the newest JDK in /usr/lib/jvm).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=26.5.6
cache=${CLIENTS_CACHE:-$here/.clients}/keycloak
dir="$cache/keycloak-$version"
if [ "${1:-}" = stop ]; then
  [ -f "$cache/pid" ] && kill "$(cat "$cache/pid")" 2>/dev/null || true
  exit 0
fi
if [ ! -x "$dir/bin/kc.sh" ]; then
  mkdir -p "$cache"
  curl -sSfL -o "$cache/keycloak.zip" \
    "https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$version/keycloak-quarkus-dist-$version.zip"
  (cd "$cache" && unzip -q -o keycloak.zip && rm keycloak.zip)
fi
java_home=${JAVA_HOME:-}
if [ -z "$java_home" ] || ! "$java_home/bin/java" -version 2>&1 | grep -qE 'version "(2[1-9]|[3-9][0-9])'; then
  java_home=""
  for j in $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -V -r); do
    if "$j/bin/java" -version 2>&1 | grep -qE 'version "(2[1-9]|[3-9][0-9])'; then java_home=${j%/}; break; fi
  done
fi
[ -n "$java_home" ] || { echo "keycloak.sh: no Java >= 21 (set JAVA_HOME)" >&2; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dir/data/import"
cp "$here/clients/keycloak/realm.json" "$dir/data/import/kinto-realm.json"
[ -f "$cache/pid" ] && kill "$(cat "$cache/pid")" 2>/dev/null || true
JAVA_HOME=$java_home KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=admin \
  nohup "$dir/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port="$port" --import-realm \
  --hostname-strict=false >"$cache/keycloak.log" 2>&1 &
echo $! >"$cache/pid"
issuer="http://127.0.0.1:$port/realms/kinto"
for _ in $(seq 180); do
  if curl -sf "$issuer/.well-known/openid-configuration" >/dev/null; then
    echo "$issuer"
    exit 0
  fi
  sleep 1
done
tail -30 "$cache/keycloak.log" >&2
exit 1
