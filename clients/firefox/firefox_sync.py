"""Firefox itself syncs signed collections from kintogo.

Debian's firefox-esr, headless, driven through Marionette (PyPI
marionette-driver), with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 and
services.settings.server pointing at a kintogo on 127.0.0.1, whose signer
key was issued under Autograph's development intermediate: the one chain
Firefox accepts for a local server (it compiles in that root). Every check
runs Firefox's own RemoteSettings code in privileged JavaScript, with
signature verification on (a build constant):

  - a fresh profile imports the collection flagged "startup" from
    bundles/startup.json.mozlz4, verified, without asking for its changeset;
  - a first sync, verified; local data tampered with is rejected;
  - pollChanges() after an edit, a review and an approval: an incremental
    sync (with _since) whose "sync" event lists what was created, updated
    and deleted;
  - an attachment downloaded and checked (size, hash), and cacheAll()
    filling the cache from bundles/{bid}--{cid}.zip;
  - preview mode: the changes under review, signed by the preview.

Usage: firefox_sync.py KINTOGO_BINARY ISSUER_CERTIFICATE ISSUER_KEY
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from marionette_driver.marionette import Marionette

FIREFOX = os.environ.get("FIREFOX", "/usr/bin/firefox-esr")
EDITOR, REVIEWER = ("editor", "editor-pw"), ("reviewer", "reviewer-pw")
CERTS, STARTUP, FILES = "kintogo-ff-certs", "kintogo-ff-startup", "kintogo-ff-files"
FILE_CONTENT = b"kintogo attachment for Firefox\n" * 10


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A kintogo with the Remote Settings workflow, on 127.0.0.1."""

    def __init__(self, binary, keys, work):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = os.path.join(work, "server.log")
        env = dict(
            os.environ,
            KINTO_INCLUDES="kinto.plugins.accounts kinto_remote_settings kinto_attachment",
            KINTO_MULTIAUTH_POLICIES="account",
            KINTO_ACCOUNT_CREATE_PRINCIPALS="system.Everyone",
            KINTO_BUCKET_CREATE_PRINCIPALS="system.Authenticated",
            KINTO_SIGNER_RESOURCES="/buckets/main-workspace -> /buckets/main-preview -> /buckets/main",
            KINTO_SIGNER_TO_REVIEW_ENABLED="true",
            KINTO_SIGNER_ECDSA_PRIVATE_KEY=os.path.join(keys, "signer-key.pem"),
            KINTO_SIGNER_ECDSA_CERTIFICATE_CHAIN=os.path.join(keys, "chain.pem"),
            KINTO_HTTP_HOST=f"127.0.0.1:{self.port}",
            KINTO_STORAGE_URL=os.path.join(work, "kinto.db"),
            KINTO_ATTACHMENT_BASE_PATH=os.path.join(work, "attachments"),
            KINTO_LOG_FORMAT="json",
        )
        env.pop("KINTO_INI", None)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "start", "--port", str(self.port)], env=env, cwd=work,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.base + "/__lbheartbeat__")
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("kintogo did not start:\n" + open(self.log_path).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()

    def request(self, method, path, body=None, auth=None, content_type="application/json", want=None):
        data = body
        if body is not None and content_type == "application/json":
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        try:
            with urllib.request.urlopen(req) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        if want is not None and status not in want:
            raise SystemExit(f"{method} {path}: {status} {raw[:500]!r}")
        return json.loads(raw) if raw else None

    def requests_since(self, mark):
        """The paths (with their query) of the requests logged after mark."""
        out = []
        with open(self.log_path) as f:
            f.seek(mark)
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("Type") == "request.summary":  # mozlog, as Kinto logs
                    fields = entry["Fields"]
                    qs = fields.get("querystring") or {}
                    out.append(fields["path"] + ("?" + "&".join(f"{k}={v}" for k, v in qs.items()) if qs else ""))
        return out

    def log_mark(self):
        self.log.flush()
        return os.path.getsize(self.log_path)

    # The workflow, as editors and reviewers drive it.
    def review_and_approve(self, cid):
        path = f"/buckets/main-workspace/collections/{cid}"
        self.request("PATCH", path, {"data": {"status": "to-review"}}, EDITOR, want=[200])
        self.request("PATCH", path, {"data": {"status": "to-sign"}}, REVIEWER, want=[200])
        status = self.request("GET", path, auth=EDITOR, want=[200])["data"]["status"]
        assert status == "signed", f"{cid}: {status}"

    def upload(self, cid, rid, filename, content):
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{filename}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        self.request("POST", f"/buckets/main-workspace/collections/{cid}/records/{rid}/attachment", body, EDITOR,
                     content_type=f"multipart/form-data; boundary={boundary}", want=[200, 201])


def lz4_block(src, size):
    """Decodes an LZ4 block (to wait for a bundle; Firefox decodes its own)."""

    def length(n, i):
        # A length of 15 goes on in the next bytes, while they are 255.
        if n == 15:
            while True:
                n += src[i]
                i += 1
                if src[i - 1] != 255:
                    break
        return n, i

    out, i = bytearray(), 0
    while i < len(src):
        token = src[i]
        n, i = length(token >> 4, i + 1)
        out += src[i:i + n]
        i += n
        if i >= len(src):
            break
        offset = src[i] | src[i + 1] << 8
        n, i = length(token & 15, i + 2)
        for _ in range(n + 4):
            out.append(out[-offset])
    assert len(out) == size, (len(out), size)
    return bytes(out)


def wait_for_bundle(server, cids):
    """Waits until the startup bundle holds the signed collections cids."""
    url = server.base[:-len("/v1")] + "/attachments/bundles/startup.json.mozlz4"
    for _ in range(100):
        try:
            raw = urllib.request.urlopen(url).read()
            assert raw[:8] == b"mozLz40\0"
            changesets = json.loads(lz4_block(raw[12:], int.from_bytes(raw[8:12], "little")))
            if sorted(c["metadata"]["id"] for c in changesets if "signature" in c["metadata"]) == sorted(cids):
                return
        except urllib.error.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the startup bundle was not built")


def setup(server):
    s = server
    for user, password in (EDITOR, REVIEWER):
        s.request("PUT", f"/accounts/{user}", {"data": {"password": password}}, want=[201])
    s.request("PUT", "/buckets/main-workspace", auth=EDITOR, want=[201])
    collections = {CERTS: {}, STARTUP: {"flags": ["startup"]}, FILES: {"attachment": {"bundle": True}}}
    for cid, metadata in collections.items():
        s.request("PUT", f"/buckets/main-workspace/collections/{cid}", {"data": metadata}, EDITOR, want=[201])
        s.request("PATCH", f"/buckets/main-workspace/groups/{cid}-reviewers",
                  {"data": {"members": ["account:reviewer"]}}, EDITOR, want=[200])
    for rid, name in (("cert-1", "first"), ("cert-2", "second")):
        s.request("PUT", f"/buckets/main-workspace/collections/{CERTS}/records/{rid}", {"data": {"name": name}}, EDITOR, want=[201])
    s.request("PUT", f"/buckets/main-workspace/collections/{STARTUP}/records/boot-1", {"data": {"at": "startup"}}, EDITOR, want=[201])
    s.request("PUT", f"/buckets/main-workspace/collections/{FILES}/records/file-1", {"data": {"kind": "blob"}}, EDITOR, want=[201])
    s.upload(FILES, "file-1", "blob.txt", FILE_CONTENT)
    for cid in collections:
        s.review_and_approve(cid)
    wait_for_bundle(s, [STARTUP])


# Privileged JavaScript: an async function body; `args` holds the
# arguments; what it returns comes back (errors as {error: "..."}).
PRELUDE = """
const [args, resolve] = [arguments[0], arguments[arguments.length - 1]];
const { RemoteSettings } = ChromeUtils.importESModule("resource://services-settings/remote-settings.sys.mjs");
(async () => { %s })().then(resolve, e => resolve({ error: `${e.name}: ${e.message}` }));
"""


def js(client, body, args=None):
    result = client.execute_async_script(PRELUDE % body, script_args=[args or {}], new_sandbox=False)
    if isinstance(result, dict) and "error" in result:
        raise AssertionError(result["error"])
    return result


checks = []


def check(name, ok, detail=""):
    checks.append(name)
    if not ok:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {len(checks)} - {name}")


def firefox(server, work):
    os.environ["MOZ_REMOTE_SETTINGS_DEVTOOLS"] = "1"
    prefs = {
        "services.settings.server": server.base,
        "services.settings.loglevel": "debug",
        "dom.push.connection.enabled": False,  # no broadcasts from Mozilla's push service
        "browser.shell.checkDefaultBrowser": False,
    }
    client = Marionette(bin=FIREFOX, headless=True, prefs=prefs, gecko_log=os.path.join(work, "gecko.log"),
                        startup_timeout=120)
    client.start_session()
    client.set_context(client.CONTEXT_CHROME)
    client.timeout.script = 120
    return client


def run(server, client, started):
    s = server

    # A fresh profile: the startup bundle, verified, no changeset asked
    # (Firefox's own components may ask for the bundle first, at start).
    got = js(client, """
        const records = await RemoteSettings(args.cid).get();
        return records.map(r => r.id);
    """, {"cid": STARTUP})
    requests = s.requests_since(started)
    check("a fresh profile imports the startup collection from the startup bundle", got == ["boot-1"], got)
    check("... without asking for its changeset",
          any(p.endswith("/attachments/bundles/startup.json.mozlz4") for p in requests)
          and not any(f"/collections/{STARTUP}/changeset" in p for p in requests), requests)

    # First sync, verified; tampered local data rejected.
    got = js(client, """
        const client = RemoteSettings(args.cid);
        await client.sync();
        const records = await client.get({ verifySignature: true, syncIfEmpty: false });
        return records.map(r => r.id + ":" + r.name).sort();
    """, {"cid": CERTS})
    check("first sync, signature verified", got == ["cert-1:first", "cert-2:second"], got)
    got = js(client, """
        const client = RemoteSettings(args.cid);
        const original = (await client.db.list()).find(r => r.id == "cert-1");
        await client.db.update({ ...original, name: "tampered" });
        let outcome = "accepted";
        try {
            await client.get({ verifySignature: true, syncIfEmpty: false });
        } catch (e) {
            outcome = e.name;
        }
        await client.db.update(original);
        await client.get({ verifySignature: true, syncIfEmpty: false }); // verifies again
        return outcome;
    """, {"cid": CERTS})
    check("local data tampered with is rejected", got == "InvalidSignatureError", got)

    # An edit, a review, an approval: pollChanges syncs what changed.
    js(client, """
        const client = RemoteSettings(args.cid);
        globalThis.kintogoSyncEvents = [];
        client.on("sync", ({ data }) => globalThis.kintogoSyncEvents.push({
            created: data.created.map(r => r.id), deleted: data.deleted.map(r => r.id),
            updated: data.updated.map(u => u.old.id + ":" + u.old.name + "->" + u.new.name),
            current: data.current.map(r => r.id).sort(),
        }));
        return true;
    """, {"cid": CERTS})
    ws = f"/buckets/main-workspace/collections/{CERTS}/records"
    s.request("PATCH", ws + "/cert-1", {"data": {"name": "first, edited"}}, EDITOR, want=[200])
    s.request("DELETE", ws + "/cert-2", auth=EDITOR, want=[200])
    s.request("PUT", ws + "/cert-3", {"data": {"name": "third"}}, EDITOR, want=[201])
    s.review_and_approve(CERTS)
    expected = s.request("GET", "/buckets/monitor/collections/changes/changeset?_expected=0&bucket=main&collection=" + CERTS,
                         want=[200])["changes"][0]["last_modified"]
    mark = s.log_mark()
    events = js(client, """
        await RemoteSettings.pollChanges({ expectedTimestamp: args.expected, trigger: "manual" });
        return globalThis.kintogoSyncEvents;
    """, {"expected": expected})
    requests = s.requests_since(mark)
    check("pollChanges() syncs the approved changes, with the right events",
          events == [{"created": ["cert-3"], "deleted": ["cert-2"], "updated": ["cert-1:first->first, edited"],
                      "current": ["cert-1", "cert-3"]}], events)
    check("... incrementally (_since)", any(f"/collections/{CERTS}/changeset" in p and "_since=" in p for p in requests), requests)
    got = js(client, """
        const records = await RemoteSettings(args.cid).get({ verifySignature: true, syncIfEmpty: false });
        return records.map(r => r.id).sort();
    """, {"cid": CERTS})
    check("... and verifies", got == ["cert-1", "cert-3"], got)

    # Attachments: the zip bundle fills the cache, a download is checked.
    record = s.request("GET", f"/buckets/main/collections/{FILES}/records/file-1", want=[200])["data"]
    mark = s.log_mark()
    got = js(client, """
        const client = RemoteSettings(args.cid);
        await client.sync();
        const cached = await client.attachments.cacheAll();
        const [record] = await client.get({ verifySignature: true, syncIfEmpty: false });
        const { buffer, _source } = await client.attachments.download(record);
        const bytes = new Uint8Array(buffer);
        return { cached, source: _source, size: bytes.length, text: new TextDecoder().decode(bytes) };
    """, {"cid": FILES})
    requests = s.requests_since(mark)
    check("cacheAll() fills the cache from the zip bundle",
          got["cached"] is True and any(p.endswith(f"/attachments/bundles/main--{FILES}.zip") for p in requests), (got, requests))
    check("... and the attachment comes from it, checked",
          got["source"] == "cache_match" and got["text"].encode() == FILE_CONTENT
          and not any(p.endswith(record["attachment"]["location"]) for p in requests), (got, requests))
    got = js(client, """
        const client = RemoteSettings(args.cid);
        const [record] = await client.get({ syncIfEmpty: false });
        await client.attachments.deleteAll();
        const { buffer, _source } = await client.attachments.download(record);
        return { source: _source, size: buffer.byteLength };
    """, {"cid": FILES})
    check("an attachment downloaded from the server, size and hash checked",
          got == {"source": "remote_match", "size": len(FILE_CONTENT)}, got)

    # Preview mode: what is under review, signed by the preview.
    s.request("PATCH", ws + "/cert-3", {"data": {"name": "third, in review"}}, EDITOR, want=[200])
    s.request("PATCH", f"/buckets/main-workspace/collections/{CERTS}", {"data": {"status": "to-review"}}, EDITOR, want=[200])
    got = js(client, """
        RemoteSettings.enablePreviewMode(true);
        const client = RemoteSettings(args.cid);
        await client.sync();
        const records = await client.get({ verifySignature: true, syncIfEmpty: false });
        const bucket = client.bucketName;
        RemoteSettings.enablePreviewMode(false);
        return { bucket, names: records.map(r => r.name).sort() };
    """, {"cid": CERTS})
    check("preview mode: the changes under review, verified",
          got == {"bucket": "main-preview", "names": ["first, edited", "third, in review"]}, got)


def main():
    binary, issuer, issuer_key = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="kintogo-firefox-")
    keys = os.path.join(work, "keys")
    subprocess.run([binary, "signer-keys", "--issuer-certificate", issuer, "--issuer-key", issuer_key,
                    "--days", "7", keys], check=True, stdout=subprocess.DEVNULL)
    server = Server(binary, keys, work)
    client = None
    try:
        setup(server)
        started = server.log_mark()
        client = firefox(server, work)
        run(server, client, started)
        print(f"Firefox: {len(checks)} checks passed")
    except BaseException:
        print("--- kintogo log (tail) ---\n" + "".join(open(server.log_path).readlines()[-40:]), file=sys.stderr)
        gecko = os.path.join(work, "gecko.log")
        if os.path.exists(gecko):
            lines = [l for l in open(gecko, errors="replace") if "RemoteSettings" in l or "services.settings" in l or "Error" in l]
            print("--- Firefox log (Remote Settings lines, tail) ---\n" + "".join(lines[-60:]), file=sys.stderr)
        raise
    finally:
        if client is not None:
            client.cleanup()  # quits Firefox, removes its profile
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
