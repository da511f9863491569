#!/usr/bin/env bash
# Starts a local PostgreSQL (Debian's packages, installed when missing) and
# creates the test role and database; prints the DSN to use as
# KINTOGO_TEST_POSTGRES. Idempotent. Needs root (apt-get, su postgres).
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -q "^$version main$"; then
  pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 50); do
  su postgres -c "psql -qtAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
psql_do() { su postgres -c "psql -qtAc \"$1\""; }
[ "$(psql_do "SELECT 1 FROM pg_roles WHERE rolname = 'kintogo'")" = 1 ] ||
  psql_do "CREATE ROLE kintogo LOGIN SUPERUSER PASSWORD 'kintogo'" >&2
for db in kintogo_test kintogo_nodes; do
  [ "$(psql_do "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] ||
    su postgres -c "createdb -O kintogo $db" >&2
done
echo "postgres://kintogo:kintogo@127.0.0.1:5432/kintogo_test"
