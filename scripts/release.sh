#!/usr/bin/env bash
# Builds kintogo's release binaries in dist/: static (no cgo: SQLite is
# pure Go), for linux and macOS on amd64 and arm64, with the version
# stamped (`kintogo version` shows it, and the commit it was built from).
# Usage: scripts/release.sh [VERSION] (default: git describe, else the
# source's version).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
mkdir -p dist
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64; do
  os=${target%/*} arch=${target#*/}
  out="dist/kintogo-$version-$os-$arch"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=auto \
    -ldflags "-s -w -X kintogo/internal/app.Version=$version" -o "$out" ./cmd/kintogo
  echo "$out ($(du -h "$out" | cut -f1))"
done
(cd dist && sha256sum kintogo-"$version"-* >"kintogo-$version.sha256")
echo "checksums: dist/kintogo-$version.sha256"
