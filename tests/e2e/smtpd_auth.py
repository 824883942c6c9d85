"""aiosmtpd with what its command line cannot set: implicit TLS (SMTPS, RFC 8314) and a
required AUTH login (RFC 4954), delivering to a Maildir like `-c aiosmtpd.handlers.Mailbox`.
For tests/e2e/notify.rs: python3 smtpd_auth.py PORT MAILDIR CERT KEY USER PASSWORD"""
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, cert, key, user, password = sys.argv[1:7]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode() and auth_data.password == password.encode())
    if not ok:
        print(f"AUTH refused ({mechanism})", file=sys.stderr, flush=True)
    return AuthResult(success=ok)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
controller = Controller(
    Mailbox(maildir),
    hostname="127.0.0.1",
    port=int(port),
    ssl_context=ctx,
    authenticator=authenticate,
    auth_required=True,
    # The whole connection is TLS already; aiosmtpd only knows STARTTLS as "TLS".
    auth_require_tls=False,
)
controller.start()
print("ready", file=sys.stderr, flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
signal.signal(signal.SIGINT, lambda *_: done.set())
done.wait()
controller.stop()
