#!/usr/bin/env bash
# Installs the admin UI (kinto-admin) into .admin/ (or $1), where
# `kintogo start` finds it (kinto.admin_assets_path overrides). kinto-admin
# is not in this repository: its built files come from PyPI's kinto 25.0.0
# wheel, the last one that ships them (kinto-admin 6.2.0, built for
# /v1/admin/), checked against the wheel's sha256.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/.admin}
version=25.0.0
sha256=${KINTO_WHEEL_SHA256:-2b046f8505595926d905da50ac742704df09fbe041ae2fab68de256cf0d3ee45}
if [ -f "$dest/index.html" ] && [ -f "$dest/VERSION" ]; then
  echo "kinto-admin $(cat "$dest/VERSION") is installed in $dest"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Python's standard library only (no pip): the wheel's address from PyPI's
# simple index (PIP_INDEX_URL when set), then the wheel, a zip.
index=${PIP_INDEX_URL:-https://pypi.org/simple}
python3 - "${index%/}/kinto/" "kinto-$version-py3-none-any.whl" "$work" <<'PY'
import re, sys, urllib.parse, urllib.request
index, name, work = sys.argv[1:]
page = urllib.request.urlopen(index, timeout=60).read().decode()
links = [l for l in re.findall(r'href="([^"]+)"', page) if urllib.parse.urlsplit(l).path.endswith("/" + name)]
if not links:
    sys.exit(f"{name} is not listed at {index}")
url = urllib.parse.urljoin(index, links[0].split("#")[0])
with urllib.request.urlopen(url, timeout=300) as r, open(f"{work}/{name}", "wb") as f:
    f.write(r.read())
PY
wheel="$work/kinto-$version-py3-none-any.whl"
python3 - "$wheel" "$dest" "$sha256" <<'PY'
import hashlib, os, shutil, sys, zipfile
wheel, dest, want = sys.argv[1:]
got = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
if want and got != want:
    sys.exit(f"{wheel}: sha256 {got}, expected {want}")
prefix = "kinto/plugins/admin/build/"
tmp = dest + ".partial"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"{wheel} has no {prefix}")
    for n in names:
        rel = os.path.normpath(n[len(prefix):])
        if rel.startswith("..") or os.path.isabs(rel):
            sys.exit(f"unsafe path in wheel: {n}")
        out = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(n) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    if not os.path.exists(os.path.join(tmp, "VERSION")):
        with open(os.path.join(tmp, "VERSION"), "wb") as f:
            f.write(z.read("kinto/plugins/admin/VERSION"))
shutil.rmtree(dest, ignore_errors=True)
os.rename(tmp, dest)
print(f"kinto-admin {open(os.path.join(dest, 'VERSION')).read().strip()} installed in {dest} ({len(names)} files, wheel sha256 {got})")
PY
