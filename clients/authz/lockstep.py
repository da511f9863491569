#!/usr/bin/env python3
"""Kinto's authorization model, kintogo against the reference Kinto in lockstep.

    lockstep.py --kintogo URL --reference URL [--sequences N] [--steps N] [--seed S]

Both servers run with the same settings (basicauth, the flush plugin,
bucket_create_principals = system.Authenticated, the same HMAC secret, so
that users have the same ids). Each sequence flushes both, then plays the
same random requests on both: users (three, and anonymous) create, change,
read, list and delete buckets, collections, groups and records, with random
permissions naming users, groups, system.Authenticated and system.Everyone,
and random group members. Every answer is compared: status, errno, and what
it shows (ids of a list, an object's data and visible permissions).
Timestamps are left out, and so are the requests whose outcome README lists
as an intentional difference (deletions of groups and buckets, which remove
the groups' principals from every ACL on kintogo). Exits non-zero on the first
difference, printing the sequence that led to it.
"""
import argparse, base64, json, random, sys, urllib.error, urllib.request

USERS = ["alice", "bob", "carol", None]
BUCKETS = ["b0", "b1"]
COLLS = ["c0", "c1"]
GROUPS = ["g0", "g1"]
RECORDS = ["r0", "r1", "r2"]
PERMS = {"bucket": ["read", "write", "collection:create", "group:create"],
         "collection": ["read", "write", "record:create"],
         "group": ["read", "write"], "record": ["read", "write"]}


def call(base, method, path, user=None, body=None):
    headers = {}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        out = json.loads(raw) if raw else None
    except ValueError:
        out = raw.decode(errors="replace")
    return status, out


def shown(status, body):
    """What an answer shows, without what legitimately differs."""
    if not isinstance(body, dict):
        return status, None
    if status >= 400:
        return status, body.get("errno")
    data = body.get("data")
    if isinstance(data, list):
        return status, sorted(d.get("id") for d in data)
    if isinstance(data, dict):
        fields = {k: v for k, v in data.items() if k not in ("last_modified",)}
        perms = {k: sorted(v) for k, v in (body.get("permissions") or {}).items() if v}
        return status, fields, perms
    return status, None


def principals(rng, ids):
    pool = [ids[u] for u in USERS if u] + ["system.Authenticated", "system.Everyone"]
    pool += [f"/buckets/{b}/groups/{g}" for b in BUCKETS for g in GROUPS]
    return rng.sample(pool, rng.randint(0, 3))


def setup_requests(rng, ids):
    """A sequence starts with its tree: buckets, collections and groups
    made by random users, with random permissions."""
    out = []
    for b in BUCKETS:
        owner = rng.choice(USERS[:3])
        out.append((owner, "PUT", f"/buckets/{b}", {"permissions": {p: principals(rng, ids) for p in rng.sample(PERMS["bucket"], 2)}}))
        for c in COLLS:
            out.append((rng.choice([owner, owner, rng.choice(USERS)]), "PUT", f"/buckets/{b}/collections/{c}",
                        {"permissions": {p: principals(rng, ids) for p in rng.sample(PERMS["collection"], 2)}}))
        out.append((owner, "PUT", f"/buckets/{b}/groups/{GROUPS[0]}", {"data": {"members": principals(rng, ids)}}))
    return out


def random_request(rng, ids):
    user = rng.choice(USERS)
    b, c, g, r = rng.choice(BUCKETS), rng.choice(COLLS), rng.choice(GROUPS), rng.choice(RECORDS)
    kind = rng.choice(["bucket", "collection", "collection", "group", "record", "record", "record"])
    path = {"bucket": f"/buckets/{b}", "collection": f"/buckets/{b}/collections/{c}",
            "group": f"/buckets/{b}/groups/{g}", "record": f"/buckets/{b}/collections/{c}/records/{r}"}[kind]
    plural = path.rsplit("/", 1)[0]
    op = rng.choice(["put", "put", "patch-perms", "patch-data", "get", "get", "list", "delete", "post"])
    perms = {p: principals(rng, ids) for p in rng.sample(PERMS[kind], rng.randint(0, len(PERMS[kind])))}
    data = {"members": principals(rng, ids)} if kind == "group" else {"v": rng.randint(0, 9)}
    if op == "put":
        return user, "PUT", path, {"data": data, "permissions": perms}
    if op == "patch-perms":
        return user, "PATCH", path, {"permissions": perms or {"read": []}}
    if op == "patch-data":
        return user, "PATCH", path, {"data": data}
    if op == "get":
        return user, "GET", path, None
    if op == "list" and kind != "bucket":
        return user, "GET", plural, None
    # The deletion of a group (or of a bucket, with its groups) removes the
    # group's principal from every ACL on kintogo, not on Kinto (README).
    if op == "delete" and kind in ("collection", "record"):
        return user, "DELETE", path, None
    if op == "post" and kind == "record":
        return user, "POST", plural, {"data": {"id": r, **data}, "permissions": perms}
    return user, "GET", path, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kintogo", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--sequences", type=int, default=300)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    args = ap.parse_args()
    servers = {"kintogo": args.kintogo.rstrip("/"), "reference": args.reference.rstrip("/")}
    ids = {u: call(servers["reference"], "GET", "/", u)[1]["user"]["id"] for u in USERS if u}
    for u in ids:
        theirs = call(servers["kintogo"], "GET", "/", u)[1]["user"]["id"]
        if theirs != ids[u]:
            sys.exit(f"user ids differ ({u}: {theirs} vs {ids[u]}): give both servers the same userid_hmac_secret")
    compared, statuses = 0, {}
    for seq in range(args.sequences):
        rng = random.Random(args.seed * 100003 + seq)
        for base in servers.values():
            status, _ = call(base, "POST", "/__flush__")
            if status != 202:
                sys.exit(f"flush of {base}: {status} (include kinto.plugins.flush)")
        played = []
        requests = setup_requests(rng, ids) + [random_request(rng, ids) for _ in range(args.steps)]
        for step, (user, method, path, body) in enumerate(requests):
            played.append(f"{user or 'anonymous'} {method} {path} {json.dumps(body) if body is not None else ''}")
            got = {name: shown(*call(base, method, path, user, body)) for name, base in servers.items()}
            compared += 1
            statuses[got["reference"][0]] = statuses.get(got["reference"][0], 0) + 1
            if got["kintogo"] != got["reference"]:
                print(f"difference in sequence {seq} (seed {args.seed}), step {step}:")
                for line in played:
                    print("   ", line)
                print("  kintogo:  ", got["kintogo"])
                print("  reference:", got["reference"])
                sys.exit(1)
    print(f"authorization lockstep: {args.sequences} sequences, {compared} requests (statuses {dict(sorted(statuses.items()))}), "
          f"kintogo answered as the reference (seed {args.seed})")


if __name__ == "__main__":
    main()
