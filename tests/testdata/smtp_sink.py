"""An SMTP server for the email notifier's black-box tests (aiosmtpd).

    python3 smtp_sink.py PORT OUT [FAIL_FIRST [CERT KEY [CLIENT_CA]]]

Listens on 127.0.0.1:PORT, offers AUTH CRAM-MD5, PLAIN and LOGIN without TLS
(user `pharos`, password `secret`, CRAM-MD5 secret `shared`; authenticating is
optional) and appends one JSON line per delivery attempt to OUT: the envelope,
the login used, `"cram_md5": true` when it was by CRAM-MD5, and the message
as received (after the server has undone dot-stuffing). The first FAIL_FIRST
messages (default 0) are answered `451` at the end of DATA and recorded with
`"rejected": true`. With CERT and KEY (PEM files) it offers STARTTLS and
refuses mail before it, and records `"tls": true` for messages that came over
it, with `"tls_version"`. With CLIENT_CA it also asks for a client certificate (optional) and records
the common name of one that CLIENT_CA verified as `"client"`. Prints `ready` once
it accepts connections, then serves until it is killed.
"""

import hmac
import json
import logging
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword


class CramMd5Login:
    """The auth_data of a CRAM-MD5 login: the user name."""

    def __init__(self, login):
        self.login = login


class Sink:
    def __init__(self, out, fail_first):
        self.out = out
        self.fail_left = fail_first
        self.lock = threading.Lock()

    def record(self, entry):
        with self.lock, open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, (LoginPassword, CramMd5Login)) else None
        entry = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "data": envelope.content.decode("utf-8", "replace"),
            "cram_md5": isinstance(auth, CramMd5Login),
            "tls": session.ssl is not None,
            "client": client_name(session.ssl),
            "tls_version": tls_version(session.ssl),
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


    async def auth_CRAM__MD5(self, server, args):  # aiosmtpd: "__" is "-"
        """RFC 2195: the client answers a challenge with its name and the
        HMAC-MD5 of the challenge keyed with the shared secret."""
        challenge = f"<{os.getpid()}.{threading.get_ident()}@sink>".encode()
        answer = await server.challenge_auth(challenge)
        if answer is MISSING:  # challenge_auth has answered the client already
            return AuthResult(success=False, handled=True)
        user, _, digest = answer.decode("utf-8", "replace").partition(" ")
        expected = hmac.new(b"shared", challenge, "md5").hexdigest()
        ok = user == "pharos" and hmac.compare_digest(digest, expected)
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=CramMd5Login(user.encode()))


def tls_version(tls):
    """The TLS session's protocol version (`TLSv1.3`), if any."""
    ssl_object = (tls or {}).get("ssl_object")
    return ssl_object.version() if ssl_object else None


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
