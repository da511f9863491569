#!/usr/bin/env bash
# Content signatures checked across implementations (clients/signer):
#   1. kintogo signing with a local key and the chain of `kintogo
#      signer-keys`: autograph-utils verifies the destination's signature
#      from the served x5u and the root hash;
#   2. kintogo signing through the Autograph test server (real signatures
#      with the same chain): autograph-utils verifies them too;
#   3. when the reference server can run (../shared/bench/ref-setup.sh, or
#      REF_VENV), the reference signs the same workflow with the same key:
#      its local_ecdsa verifier checks kintogo's signature and kintogo's
#      verifier (internal/contentsig) checks the reference's.
# Usage: scripts/signer-interop.sh PYTHON (a Python >= 3.12 with
# autograph-utils, aiohttp, canonicaljson-rs and requests: scripts/clients.sh
# makes one).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=$1
shared=${SHARED_DIR:-$here/../shared}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 150); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; echo "no answer from $1" >&2; cat "$work"/*.log >&2; exit 1; }

(cd "$here" && go build -o "$work/kintogo" ./cmd/kintogo && go build -o "$work/autograph" ./clients/signer/autograph)
"$work/kintogo" signer-keys "$work/keys" >"$work/keys.txt"
root_hash=$(tail -1 "$work/keys.txt" | tr -d ' ')
common="kinto.includes = kinto.plugins.flush kinto_remote_settings
multiauth.policies = basicauth
kinto.userid_hmac_secret = interop
kinto.bucket_create_principals = system.Authenticated
kinto.signer.resources = /buckets/main-workspace -> /buckets/main-preview -> /buckets/main
kinto.signer.to_review_enabled = true
kinto.changes.resources = /buckets/main"

kintogo() { # name, port, extra settings
  mkdir -p "$work/$1"
  printf '[app:main]\n%s\nkinto.http_host = 127.0.0.1:%s\n%s\n' "$common" "$2" "$3" >"$work/$1/kinto.ini"
  (cd "$work/$1" && exec "$work/kintogo" start --ini kinto.ini --port "$2" 2>"$work/$1.log" >/dev/null) &
  pids+=($!)
  wait_for "http://127.0.0.1:$2/v1/__lbheartbeat__"
}

# 1. The local signer and its served chain.
port=$(free_port)
kintogo local "$port" "kinto.signer.ecdsa.private_key = $work/keys/signer-key.pem
kinto.signer.ecdsa.certificate_chain = $work/keys/chain.pem"
"$py" "$here/clients/signer/interop.py" --server "http://127.0.0.1:$port/v1" --root-hash "$root_hash" \
  --public-key "$work/keys/signer-public.pem" --vectors "$work/vectors.jsonl" --name "kintogo (local key)"

# 2. Through Autograph.
agport=$(free_port)
"$work/autograph" -listen "127.0.0.1:$agport" -keys "$work/keys" -hawk-id kintogo -hawk-key interop-secret 2>"$work/autograph.log" &
pids+=($!)
wait_for "http://127.0.0.1:$agport/__heartbeat__"
port=$(free_port)
kintogo via-autograph "$port" "kinto.signer.signer_backend = kinto_remote_settings.signer.backends.autograph
kinto.signer.autograph.server_url = http://127.0.0.1:$agport
kinto.signer.autograph.hawk_id = kintogo
kinto.signer.autograph.hawk_secret = interop-secret"
"$py" "$here/clients/signer/interop.py" --server "http://127.0.0.1:$port/v1" --root-hash "$root_hash" --name "kintogo (Autograph)"

# 3. The reference, when it can run.
ref=${REF_VENV:-}
if [ -z "$ref" ] && [ -x "$shared/bench/ref-setup.sh" ]; then
  if "$shared/bench/ref-setup.sh" "$work/reference" >"$work/ref-setup.log" 2>&1; then
    ref="$work/reference/venv"
  else
    echo "signer interop: the reference could not be installed (see ref-setup.sh); its checks are skipped" >&2
  fi
fi
if [ -z "$ref" ]; then
  echo "signer interop: no reference server (../shared/bench/ref-setup.sh): its checks are skipped"
  exit 0
fi
port=$(free_port)
mkdir -p "$work/ref"
printf '[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = %s\n\n[app:main]\nuse = egg:kinto\n%s\nkinto.http_host = 127.0.0.1:%s\nkinto.signer.ecdsa.private_key = %s\n' \
  "$port" "$common" "$port" "$work/keys/signer-key.pem" >"$work/ref/ref.ini"
(cd "$work/ref" && KINTO_INI="$work/ref/ref.ini" exec "$ref/bin/kinto" start --ini ref.ini 2>"$work/ref.log" >/dev/null) &
pids+=($!)
wait_for "http://127.0.0.1:$port/v1/__lbheartbeat__"
"$py" "$here/clients/signer/interop.py" --server "http://127.0.0.1:$port/v1" \
  --public-key "$work/keys/signer-public.pem" --vectors "$work/vectors.jsonl" --name "reference server"
"$ref/bin/python" "$here/clients/signer/reference_verify.py" "$work/vectors.jsonl" 2> >(grep -v pkg_resources >&2)
(cd "$here" && KINTOGO_SIGNATURE_VECTORS="$work/vectors.jsonl" go test -count=1 -run TestSignatureVectors -v ./internal/contentsig/ |
  grep -E '^(ok|FAIL|---|\s+ecdsa_test)' )
