#!/usr/bin/env python3
"""Attachment throughput: uploads and downloads of 1 MB files, kintogo
against the reference Kinto 26.5 + kinto-attachment 9.0.1, in one run.

Both keep files in a local directory. kintogo (on SQLite, its default)
serves its files itself; the reference (on its memory backends, its fastest)
has no file server, so its files are served by nginx, as a deployment would
(and, for a second row, by Python's http.server, as kinto-attachment's and
kinto-wizard's own test setups do). wrk drives every server with the same
load: uploads POST a new record's attachment per request (multipart, 1 MiB,
basic auth); downloads GET 64 of the uploaded files in turn.

    python3 bench/attachments.py [--seconds 5] [--conns 8] [--venv DIR]

Needs wrk and nginx (apt-get install wrk nginx) and the reference venv of
../shared/bench/ref-setup.sh (default /tmp/kinto-reference/venv; kinto-
attachment is pip-installed into it when missing). Loopback only; the files
written (about seconds x throughput) are removed at the end.
"""
import argparse
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
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
AUTH = "Basic " + base64.b64encode(b"bench:pw").decode()
MIB = 1 << 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(url, proc, log, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: exited at start: {open(log).read()[-400:]}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.2)
    sys.exit(f"{url}: no answer in {timeout}s")


def request(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method)
    r.add_header("Authorization", AUTH)
    if data is not None:
        r.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(r, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def ini(path, port, settings):
    lines = ["[server:main]", "use = egg:waitress#main", "host = 127.0.0.1", f"port = {port}", "",
             "[app:main]", "use = egg:kinto"] + [f"{k} = {v}" for k, v in settings.items()]
    lines += ["", "[loggers]", "keys = root", "[handlers]", "keys = console", "[formatters]", "keys = generic",
              "[logger_root]", "level = WARN", "handlers = console", "[handler_console]",
              "class = StreamHandler", "args = (sys.stderr,)", "level = WARN", "formatter = generic",
              "[formatter_generic]", "format = %(message)s", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


UPLOAD_LUA = r'''
local boundary = "kintogobenchboundary"
local file = string.rep("0123456789abcdef", 65536) -- 1 MiB
wrk.method = "POST"
wrk.headers["Authorization"] = "%(auth)s"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n" ..
  "Content-Disposition: form-data; name=\"attachment\"; filename=\"blob.bin\"\r\n" ..
  "Content-Type: application/octet-stream\r\n\r\n" .. file .. "\r\n--" .. boundary .. "--\r\n"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  return wrk.format(nil, "/v1/buckets/b/collections/c/records/t" .. tid .. "-" .. n .. "/attachment")
end
'''

DOWNLOAD_LUA = r'''
local paths = {%(paths)s}
local n = 0
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
'''


def wrk(url, script, seconds, conns):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    row = {"rps": 0.0, "p50": "?", "errors": 0}
    for line in out.splitlines():
        f = line.split()
        if line.startswith("Requests/sec:"):
            row["rps"] = float(f[1])
        elif f and f[0] == "50%":
            row["p50"] = f[1]
        elif line.strip().startswith("Non-2xx"):
            row["errors"] += int(f[-1])
        elif line.strip().startswith("Socket errors"):
            row["errors"] += sum(int(x.strip(",")) for x in f[3::2])
    return row


class Proc:
    def __init__(self, name, args, cwd, env=None):
        self.log = os.path.join(cwd, name + ".log")
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     env=env)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def nginx(root, port, work):
    conf = os.path.join(work, f"nginx-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes 2; pid {work}/nginx-{port}.pid; error_log {work}/nginx-{port}.err;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; default_type application/octet-stream;
  client_body_temp_path {work}/nginx-tmp; proxy_temp_path {work}/nginx-tmp; fastcgi_temp_path {work}/nginx-tmp;
  uwsgi_temp_path {work}/nginx-tmp; scgi_temp_path {work}/nginx-tmp;
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
""")
    os.makedirs(os.path.join(work, "nginx-tmp"), exist_ok=True)
    return Proc(f"nginx-{port}", ["nginx", "-c", conf, "-p", work], work)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--venv", default=os.path.join(tempfile.gettempdir(), "kinto-reference", "venv"))
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "go"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed")
    kinto = os.path.join(args.venv, "bin", "kinto")
    if not os.path.exists(kinto):
        sys.exit(f"no reference venv at {args.venv}: run ../shared/bench/ref-setup.sh")
    if subprocess.run([os.path.join(args.venv, "bin", "python"), "-c", "import kinto_attachment"], stderr=subprocess.DEVNULL).returncode:
        subprocess.run([os.path.join(args.venv, "bin", "pip"), "install", "-q", "kinto-attachment==9.0.1"], check=True)

    work = tempfile.mkdtemp(prefix="bench-attachments-")
    os.chmod(work, 0o755)  # nginx workers read the files as an unprivileged user
    procs = []
    try:
        binary = os.path.join(work, "kintogo-bin")
        subprocess.run(["go", "build", "-o", binary, "./cmd/kintogo"], cwd=ROOT, check=True)
        common = {"kinto.includes": "kinto_attachment", "multiauth.policies": "basicauth",
                  "kinto.userid_hmac_secret": "bench", "kinto.bucket_create_principals": "system.Authenticated",
                  "kinto.attachment.extensions": "any"}
        servers = []  # (name, api base, files base for downloads)

        kport = free_port()
        kdir = os.path.join(work, "kintogo")
        os.makedirs(kdir)
        ini(os.path.join(kdir, "kinto.ini"), kport, dict(common, **{
            "kinto.storage_url": os.path.join(kdir, "kintogo.db"),
            "kinto.attachment.base_path": os.path.join(kdir, "files")}))
        p = Proc("kintogo", [binary, "start", "--ini", "kinto.ini", "--port", str(kport)], kdir)
        procs.append(p)
        wait_for(f"http://127.0.0.1:{kport}/v1/", p.proc, p.log)
        servers.append(("kintogo (SQLite, serves its files)", f"http://127.0.0.1:{kport}", None))

        rport, nport, hport = free_port(), free_port(), free_port()
        rdir = os.path.join(work, "reference")
        rfiles = os.path.join(rdir, "files")
        os.makedirs(rfiles)
        ini(os.path.join(rdir, "ref.ini"), rport, dict(common, **{
            "kinto.storage_backend": "kinto.core.storage.memory",
            "kinto.cache_backend": "kinto.core.cache.memory",
            "kinto.permission_backend": "kinto.core.permission.memory",
            "kinto.attachment.base_path": rfiles,
            "kinto.attachment.base_url": f"http://127.0.0.1:{nport}/"}))
        p = Proc("reference", [kinto, "start", "--ini", "ref.ini"], rdir,
                 env=dict(os.environ, KINTO_INI=os.path.join(rdir, "ref.ini")))
        procs.append(p)
        wait_for(f"http://127.0.0.1:{rport}/v1/", p.proc, p.log)
        procs.append(nginx(rfiles, nport, work))
        procs.append(Proc("http.server", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                          str(hport)], rfiles))
        servers.append(("reference Kinto 26.5 + kinto-attachment 9.0.1 (memory)", f"http://127.0.0.1:{rport}",
                        [("nginx", f"http://127.0.0.1:{nport}"), ("python -m http.server", f"http://127.0.0.1:{hport}")]))
        time.sleep(0.5)

        upload = os.path.join(work, "upload.lua")
        with open(upload, "w") as f:
            f.write(UPLOAD_LUA % {"auth": AUTH})
        rows = []
        for name, base, file_servers in servers:
            request("PUT", base + "/v1/buckets/b", {})
            request("PUT", base + "/v1/buckets/b/collections/c", {})
            up = wrk(base + "/v1/buckets/b/collections/c/records", upload, args.seconds, args.conns)
            rows.append((name, "upload", up))
            info = request("GET", base + "/v1/")
            records = request("GET", base + "/v1/buckets/b/collections/c/records?_limit=64")["data"]
            locations = [r["attachment"]["location"] for r in records if r.get("attachment")]
            if not locations:
                sys.exit(f"{name}: no attachment uploaded")
            size = records[0]["attachment"]["size"]
            if size != MIB:
                sys.exit(f"{name}: uploaded size {size}, expected {MIB}")
            base_url = info["capabilities"]["attachments"]["base_url"]
            for label, files_base in file_servers or [("itself", None)]:
                # A location is relative to base_url, or a whole URL when
                # attachment.base_url is set (as kinto-attachment does).
                urls = [urllib.parse.urlparse(urllib.parse.urljoin(base_url, loc)) for loc in locations]
                paths = [u.path for u in urls]
                host = urls[0].netloc if files_base is None else urllib.parse.urlparse(files_base).netloc
                # Every download is checked once before the load.
                try:
                    with urllib.request.urlopen("http://" + host + paths[0], timeout=10) as resp:
                        got = len(resp.read())
                except urllib.error.HTTPError as e:
                    sys.exit(f"{name}, files by {label}: GET {host}{paths[0]}: {e}")
                if got != MIB:
                    sys.exit(f"{name}, files by {label}: downloaded {got} bytes, expected {MIB}")
                script = os.path.join(work, f"download-{len(rows)}.lua")
                with open(script, "w") as f:
                    f.write(DOWNLOAD_LUA % {"paths": ", ".join(json.dumps(p) for p in paths)})
                rows.append((f"{name}, files by {label}", "download", wrk("http://" + host, script, args.seconds,
                                                                          args.conns)))
        print(f"1 MiB files, wrk -t2 -c{args.conns} -d{args.seconds}s, loopback")
        width = max(len(name) for name, _, _ in rows)
        print(f"{'server':<{width}} {'op':<9} {'MiB/s':>8} {'p50':>9} {'errors':>6}")
        for name, op, r in rows:
            print(f"{name:<{width}} {op:<9} {r['rps']:>8.1f} {r['p50']:>9} {r['errors']:>6}")
        ups = {n: r["rps"] for n, op, r in rows if op == "upload"}
        downs = [(n, r["rps"]) for n, op, r in rows if op == "download"]
        kup, rup = list(ups.values())
        print(f"upload ratio kintogo / reference: {kup / rup:.2f}x" if rup else "reference uploaded nothing")
        for n, rps in downs[1:]:
            if rps:
                print(f"download ratio kintogo / {n.split('files by ')[1]}: {downs[0][1] / rps:.2f}x")
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
