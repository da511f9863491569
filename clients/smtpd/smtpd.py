"""A real SMTP server for kintogo's e-mail tests: aiosmtpd (PyPI), with
STARTTLS or implicit TLS and LOGIN/PLAIN credentials when asked, writing
each message it accepts to DIR/<n>.eml (envelope sender and recipients in
DIR/<n>.json). It prints "ready PORT" once it listens, and serves until
its standard input closes.

Usage: smtpd.py DIR [--port N] [--starttls CERT KEY] [--ssl CERT KEY]
                    [--user NAME --password SECRET]
"""

import argparse
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, folder):
        self.folder = folder
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.folder, str(self.n))
        secure = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        auth = getattr(session, "auth_data", None)
        login = auth.login.decode() if auth is not None and getattr(auth, "login", None) else None
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos, "tls": secure, "login": login}, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--starttls", nargs=2)
    ap.add_argument("--ssl", nargs=2)
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    kw = {}
    if a.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.starttls)
        kw.update(tls_context=ctx, require_starttls=True)
    if a.ssl:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.ssl)
        kw.update(ssl_context=ctx)
    if a.user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == a.user and auth_data.password.decode() == a.password
            return AuthResult(success=ok, auth_data=auth_data)
        kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(a.starttls or a.ssl))
    port = a.port
    if port == 0:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    controller = Controller(Handler(a.dir), hostname="127.0.0.1", port=port, **kw)
    controller.start()
    print("ready", port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
