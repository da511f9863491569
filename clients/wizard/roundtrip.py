"""kinto-wizard's `dump --full` / `load` round trip, attachments included,
against a kintogo that serves its attachment files itself (no base_url).

Run by scripts/clients.sh with the kinto-wizard venv's Python:

    roundtrip.py SERVER_URL WORKDIR

It fills a bucket with a collection, a group, permissions and records with
attachments, dumps everything with `kinto-wizard dump --full
--attachments DIR`, flushes the server, loads the dump back with `kinto-wizard
load --full --attachments DIR`, and checks that the server holds the same
objects and the same file bytes, and that a second dump equals the first
(attachment locations and timestamps aside, which a new upload changes).
"""

import hashlib
import os
import subprocess
import sys

import requests
from kinto_http import Client
from ruamel.yaml import YAML

AUTH = ("wizard", "secret")


def wizard(work, *args):
    cmd = [os.path.join(os.path.dirname(sys.executable), "kinto-wizard"), *args]
    # cwd: `dump --full` writes files to ./__attachments__ unless told.
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=work)
    return out.stdout


def files_of(client, server):
    """Every record's attachment, downloaded from the server: {rid: bytes}."""
    base = server.rstrip("/")
    info = requests.get(base + "/", timeout=10).json()
    base_url = info["capabilities"]["attachments"]["base_url"]
    out = {}
    for r in client.get_records(bucket="wiz", collection="files"):
        if r.get("attachment"):
            resp = requests.get(base_url + r["attachment"]["location"], timeout=10)
            resp.raise_for_status()
            out[r["id"]] = resp.content
    return out


def without_volatile(tree):
    """The dump with what a re-upload changes removed: timestamps, locations."""
    if isinstance(tree, dict):
        return {
            k: without_volatile(v)
            for k, v in tree.items()
            if k not in ("last_modified", "location")
        }
    if isinstance(tree, list):
        return [without_volatile(v) for v in tree]
    return tree


def main(server, work):
    client = Client(server_url=server, auth=AUTH)
    requests.post(server.rstrip("/") + "/__flush__", timeout=10).raise_for_status()
    client.create_bucket(id="wiz", data={"title": "round trip"})
    client.create_group(bucket="wiz", id="editors", data={"members": ["account:alice"]})
    client.create_collection(
        bucket="wiz",
        id="files",
        data={"kind": "attachments"},
        permissions={"read": ["system.Everyone"], "write": ["/buckets/wiz/groups/editors"]},
    )
    originals = {
        "report": ("report.pdf", b"%PDF-1.4\n" + os.urandom(900).hex().encode() + b"\n"),
        "image": ("photo.png", b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)),
        "words": ("words.txt", "naïve café\n".encode() * 5000),
    }
    for rid, (name, body) in originals.items():
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(body)
        client.add_attachment(
            id=rid, bucket="wiz", collection="files", filepath=path, data={"label": rid}
        )
    client.create_record(bucket="wiz", collection="files", id="plain", data={"label": "no file"})
    before = files_of(client, server)
    assert set(before) == set(originals), before.keys()
    for rid, (_, body) in originals.items():
        assert before[rid] == body, rid

    dumped_dir = os.path.join(work, "dumped")
    common = ["--server", server, "--auth", ":".join(AUTH)]
    first = wizard(work, "dump", "--full", "--attachments", dumped_dir, *common)
    yaml = YAML(typ="safe")
    first_tree = yaml.load(first)
    records = first_tree["buckets"]["wiz"]["collections"]["files"]["records"]
    assert set(records) == {"report", "image", "words", "plain"}, records.keys()
    for rid, (_, body) in originals.items():
        attachment = records[rid]["data"]["attachment"]
        with open(os.path.join(dumped_dir, attachment["location"]), "rb") as f:
            on_disk = f.read()
        assert on_disk == body, rid
        assert attachment["hash"] == hashlib.sha256(body).hexdigest(), rid
        assert attachment["size"] == len(body), rid
    dump_file = os.path.join(work, "dump.yaml")
    with open(dump_file, "w") as f:
        f.write(first)

    requests.post(server.rstrip("/") + "/__flush__", timeout=10).raise_for_status()
    assert client.get_buckets() == []
    wizard(work, "load", "--full", "--attachments", dumped_dir, *common, dump_file)

    after = files_of(client, server)
    assert set(after) == set(originals), after.keys()
    for rid, (name, body) in originals.items():
        assert after[rid] == body, rid
        record = client.get_record(bucket="wiz", collection="files", id=rid)["data"]
        assert record["label"] == rid
        assert record["attachment"]["filename"] == name, record["attachment"]
    second_dir = os.path.join(work, "dumped-again")
    second = wizard(work, "dump", "--full", "--attachments", second_dir, *common)
    second_tree = yaml.load(second)
    assert without_volatile(second_tree) == without_volatile(first_tree), (first, second)
    again = second_tree["buckets"]["wiz"]["collections"]["files"]["records"]
    for rid, (_, body) in originals.items():
        with open(os.path.join(second_dir, again[rid]["data"]["attachment"]["location"]), "rb") as f:
            assert f.read() == body, rid
    group = client.get_group(bucket="wiz", id="editors")["data"]
    assert group["members"] == ["account:alice"]
    print("kinto-wizard round trip: %d records, %d files, identical dump" % (len(records), len(after)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
