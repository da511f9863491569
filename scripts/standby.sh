#!/usr/bin/env bash
# Makes a streaming hot standby of the local PostgreSQL that
# scripts/postgres.sh starts (run it first): a second cluster of Debian's
# packages on port 5433, made with pg_basebackup -R, as Remote Settings
# runs its readers. Idempotent. Prints the DSN of the test database on the
# standby (KINTOGO_TEST_STANDBY); the command that restarts the standby is
# `pg_ctlcluster VERSION standby restart`. Needs root.
set -euo pipefail
port=${STANDBY_PORT:-5433}
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -q "^$version standby$"; then
  pg_createcluster "$version" standby -p "$port" >&2
  data=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "standby" {print $6}')
  rm -rf "${data:?}"/*
  # -R writes the primary's connection and standby.signal: the cluster
  # starts as a standby streaming from the primary (over its socket).
  su postgres -c "pg_basebackup -D '$data' -R -X stream -p 5432" >&2
fi
pg_ctlcluster "$version" standby start >/dev/null 2>&1 || true
for _ in $(seq 100); do
  [ "$(su postgres -c "psql -p $port -qtAc 'SELECT pg_is_in_recovery()'" 2>/dev/null)" = t ] && break
  sleep 0.2
done
echo "postgres://kintogo:kintogo@127.0.0.1:$port/kintogo_test"
