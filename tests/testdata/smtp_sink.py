"""An SMTP server for the email notifier's black-box tests (aiosmtpd).

    python3 smtp_sink.py PORT OUT [FAIL_FIRST [CERT KEY [CLIENT_CA]]]

Listens on 127.0.0.1:PORT, offers AUTH PLAIN and LOGIN without TLS (user
`pharos`, password `secret`; authenticating is optional) and appends one JSON
line per delivery attempt to OUT: the envelope, the login used and the message
as received (after the server has undone dot-stuffing). The first FAIL_FIRST
messages (default 0) are answered `451` at the end of DATA and recorded with
`"rejected": true`. With CERT and KEY (PEM files) it offers STARTTLS and
refuses mail before it, and records `"tls": true` for messages that came over
it. With CLIENT_CA it also asks for a client certificate (optional) and records
the common name of one that CLIENT_CA verified as `"client"`. Prints `ready` once
it accepts connections, then serves until it is killed.
"""

import json
import logging
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out, fail_first):
        self.out = out
        self.fail_left = fail_first
        self.lock = threading.Lock()

    def record(self, entry):
        with self.lock, open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        entry = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "client": client_name(session.ssl),
        }
        with self.lock:
            reject = self.fail_left > 0
            if reject:
                self.fail_left -= 1
        entry["rejected"] = reject
        self.record(entry)
        if reject:
            return "451 4.3.0 try again later"
        return "250 OK"


def client_name(tls):
    """The commonName of the client certificate the TLS session verified, if any."""
    cert = (tls or {}).get("peercert") or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"pharos"
        and auth_data.password == b"secret"
    )
    return AuthResult(success=ok, auth_data=auth_data)


def main():
    # aiosmtpd itself sets its deprecated Session.login_data, and logs a warning
    # about it, on every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    port, out = int(sys.argv[1]), sys.argv[2]
    fail_first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    tls = {}
    if len(sys.argv) > 5:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        if len(sys.argv) > 6:
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(sys.argv[6])
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(
        Sink(out, fail_first),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
        auth_required=False,
        **tls,
    )
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
