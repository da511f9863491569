"""The signed-collection workflow as Remote Settings clients see it, run
against kintogo (or the reference server), and its signature checked by
other implementations than kintogo's:

    interop.py --server URL [--root-hash HASH] [--public-key PEM]
               [--vectors FILE] [--name NAME]

An editor creates a collection in the workspace bucket and records (unicode,
astral characters, nesting, integers, escapes), asks for a review; a
reviewer approves. The destination's changeset is then verified, as a
client does:

  * with autograph-utils' SignatureVerifier, from the x5u the signature
    names and the root hash (when --root-hash is given);
  * and it is appended to --vectors ({name, public_key, records,
    timestamp, payload, signature}), for the reference's local_ecdsa
    verifier (reference_verify.py, in the reference's venv) and kintogo's
    (KINTOGO_SIGNATURE_VECTORS, internal/contentsig).

The monitor must list the destination with its records timestamp.
Settings of the server: signer.resources = /buckets/main-workspace ->
/buckets/main-preview -> /buckets/main, signer.to_review_enabled = true,
basicauth, and the changes feed of /buckets/main.
"""

import argparse
import asyncio
import json
import sys

import aiohttp
import canonicaljson
import requests

ALICE = ("alice", "alice-secret")
BOB = ("bob", "bob-secret")
RECORDS = [
    {"id": "intermediate-1", "title": "Ünïcode café", "serial": 9007199254740993, "tags": ["x", "y"]},
    {"id": "astral", "title": "😀 \U0001d11e \u2028 \"quoted\" \\ back / slash", "nested": {"b": {"c": [1, {"d": None}]}, "a": True}},
    {"id": "controls", "title": "tab\there\nnewline \x01 \x7f", "n": -42, "zero": 0},
    {"id": "empty", "list": [], "object": {}},
]


def call(method, url, auth=None, body=None, want=None):
    resp = requests.request(method, url, auth=auth, json=body, timeout=30)
    if want is not None and resp.status_code != want:
        sys.exit(f"{method} {url}: {resp.status_code}, want {want}: {resp.text[:300]}")
    return resp.json() if resp.content else None


def payload_of(changeset):
    """What the destination's signature covers, as the reference serializer
    (and Remote Settings clients) computes it."""
    records = sorted((r for r in changeset["changes"] if not r.get("deleted")), key=lambda r: r["id"])
    return canonicaljson.dumps({"data": records, "last_modified": "%s" % changeset["timestamp"]})


async def verify_autograph(payload, signature, root_hash):
    import autograph_utils

    async with aiohttp.ClientSession() as session:
        verifier = autograph_utils.SignatureVerifier(
            session, autograph_utils.MemoryCache(), autograph_utils.decode_mozilla_hash(root_hash)
        )
        await verifier.verify(payload.encode(), signature["signature"], signature["x5u"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--root-hash")
    ap.add_argument("--public-key")
    ap.add_argument("--vectors")
    ap.add_argument("--name", default="server")
    args = ap.parse_args()
    base = args.server.rstrip("/")
    requests.post(base + "/__flush__", timeout=30)  # the flush plugin, when included
    bob_id = call("GET", base + "/", auth=BOB)["user"]["id"]
    ws = base + "/buckets/main-workspace"
    call("PUT", ws, ALICE, {"permissions": {"write": ["system.Authenticated"]}})
    call("PUT", ws + "/collections/certs", ALICE, {"data": {"displayFields": ["title"]}}, want=201)
    call("PUT", ws + "/groups/certs-reviewers", ALICE, {"data": {"members": [bob_id]}})
    for r in RECORDS:
        call("PUT", ws + "/collections/certs/records/" + r["id"], ALICE, {"data": r}, want=201)
    call("PATCH", ws + "/collections/certs", ALICE, {"data": {"status": "to-review", "last_editor_comment": "please"}}, want=200)
    call("PATCH", ws + "/collections/certs", BOB, {"data": {"status": "to-sign"}}, want=200)
    status = call("GET", ws + "/collections/certs", ALICE)["data"]["status"]
    assert status == "signed", status

    changeset = call("GET", base + "/buckets/main/collections/certs/changeset?_expected=0", want=200)
    assert len(changeset["changes"]) == len(RECORDS), changeset
    signature = changeset["metadata"]["signature"]
    payload = payload_of(changeset)
    checks = []
    if args.root_hash:
        asyncio.run(verify_autograph(payload, signature, args.root_hash))
        checks.append("signature verified by autograph-utils (x5u %s)" % signature["x5u"])
    monitor = call("GET", base + "/buckets/monitor/collections/changes/records", want=200)
    entries = [e for e in monitor["data"] if e["bucket"] == "main" and e["collection"] == "certs"]
    assert entries and entries[0]["last_modified"] == changeset["timestamp"], (entries, changeset["timestamp"])
    if args.vectors:
        with open(args.vectors, "a") as f:
            public_key = open(args.public_key).read() if args.public_key else ""
            f.write(json.dumps({"name": args.name, "public_key": public_key, "records": changeset["changes"],
                                "timestamp": changeset["timestamp"], "payload": payload, "signature": signature}) + "\n")
        checks.append("written to " + args.vectors)
    print("%s: signed, reviewed, in the monitor; %s" % (args.name, "; ".join(checks) or "signature not checked here"))


if __name__ == "__main__":
    main()
