#!/usr/bin/env bash
# Kinto's authorization model, kintogo against the reference Kinto in
# lockstep (clients/authz/lockstep.py): random sequences of users, groups
# and permissions played on both, every answer compared.
# Usage: scripts/authz-lockstep.sh REF_VENV [SEQUENCES]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ref=$1
sequences=${2:-300}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 150); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; echo "no answer from $1" >&2; cat "$work"/*.log >&2; exit 1; }

settings="kinto.includes = kinto.plugins.flush
multiauth.policies = basicauth
kinto.userid_hmac_secret = lockstep
kinto.bucket_create_principals = system.Authenticated"
(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo)
kport=$(free_port)
mkdir -p "$work/k"
printf '[app:main]\n%s\n' "$settings" >"$work/k/kinto.ini"
(cd "$work/k" && exec "$work/kintogo" start --ini kinto.ini --port "$kport" 2>"$work/kintogo.log" >/dev/null) &
pids+=($!)
rport=$(free_port)
mkdir -p "$work/r"
printf '[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = %s\n\n[app:main]\nuse = egg:kinto\nkinto.storage_backend = kinto.core.storage.memory\nkinto.permission_backend = kinto.core.permission.memory\nkinto.cache_backend = kinto.core.cache.memory\n%s\n' \
  "$rport" "$settings" >"$work/r/ref.ini"
(cd "$work/r" && KINTO_INI="$work/r/ref.ini" exec "$ref/bin/kinto" start --ini ref.ini 2>"$work/ref.log" >/dev/null) &
pids+=($!)
wait_for "http://127.0.0.1:$kport/v1/__lbheartbeat__"
wait_for "http://127.0.0.1:$rport/v1/__heartbeat__"
python3 "$here/clients/authz/lockstep.py" --kintogo "http://127.0.0.1:$kport/v1" --reference "http://127.0.0.1:$rport/v1" --sequences "$sequences"
