"""One SMTP session: connect, TLS and login, then messages one after another.

Per message, on a connection already greeted, secured and logged in:
``MAIL FROM``, ``RCPT TO`` and ``DATA`` (in one write when the server offers
PIPELINING), then the message bytes, dot-stuffed, and the final reply. The
bytes are sent as they are: no per-message line-ending pass as in
``smtplib.sendmail``.

Waiting is bounded by deadlines, not only per read, so a server that trickles
a line now and then cannot hold a send for ever: opening a connection (connect,
greeting, EHLO, STARTTLS, login) has ``timeout`` seconds in all, and each reply
``timeout`` seconds, but the reply to the final "." ``data_timeout`` seconds
(RFC 5321 4.5.3.2.6: ten minutes), since the server may be checking the
message. When that reply never comes the message may have arrived: its outcome
is ``unknown``, and it is not sent again.
"""

from __future__ import annotations

import base64
import io
import math
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...config import SmtpConfig
from ..base import Job, Outcome
from .explain import Failure, Overdue, address, explain, is_throttle, reply_text

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from .oauth import Tokens

__all__ = [
    "Dropped",
    "Log",
    "Session",
    "TlsSession",
    "deliver",
    "dot_stuff",
    "open_session",
    "quit_session",
    "still_there",
]

Log = Callable[[str], None]

_REDACTED = "********"
_HEARD = 80  # bytes of a reply kept, to quote when it never ends


class Dropped(Exception):
    """The connection went away while a message was on it."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Replies(io.RawIOBase):
    """The socket as smtplib reads replies from it, each read cut off at the
    session's deadline for the reply (a socket timeout alone is per read)."""

    def __init__(self, session: Session, sock: socket.socket) -> None:
        super().__init__()
        self._session = session
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        session = self._session
        left = session.reply_deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
            got = self._sock.recv_into(buffer)
        except TimeoutError:
            raise Overdue(session.heard) from None
        if len(session.heard) < _HEARD:
            session.heard = (session.heard + bytes(memoryview(buffer)[:got]))[:_HEARD]
        return got


class Session(smtplib.SMTP):
    """smtplib's session, with each line of the conversation logged, AUTH redacted,
    and each reply read within a deadline."""

    def __init__(self, *, log: Log | None, **kwargs: object) -> None:
        self.log = log
        self._in_auth = False
        self.last_used = time.monotonic()
        self.setup_deadline = math.inf  # while opening: when the whole set-up must be done
        self.reply_deadline = math.inf  # while reading a reply: when it must be whole
        self.heard = b""  # the start of the reply being read
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def _within(self) -> float:
        """The socket timeout for a step now: ``timeout``, or less near the set-up deadline."""
        return max(min(self.timeout, self.setup_deadline - time.monotonic()), 1e-3)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's hook (not in its type stubs): connecting and, for implicit TLS,
        # the handshake count towards the set-up deadline.
        get: Callable[[str, int, float], socket.socket] = super()._get_socket  # type: ignore[misc]
        return get(host, port, min(timeout, self._within()))

    def send(self, s: str | bytes) -> None:  # type: ignore[override]
        if self.sock is not None:
            self.sock.settimeout(self._within())
        if self.log is not None:
            text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
            for line in text.removesuffix("\r\n").split("\r\n"):
                if line[:5].upper() == "AUTH ":
                    self._in_auth = True
                    words = line.split(" ", 2)
                    line = " ".join(words[:2]) + (" " + _REDACTED if len(words) > 2 else "")
                elif self._in_auth:
                    line = _REDACTED
                self.log("> " + line)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        return self.reply_within(self.timeout)

    def reply_within(self, seconds: float) -> tuple[int, bytes]:
        """The next reply, whole within ``seconds`` (and the set-up deadline).

        Raises SMTPServerDisconnected, from Overdue when the time ran out.
        """
        self.reply_deadline = min(self.setup_deadline, time.monotonic() + seconds)
        self.heard = b""
        if self.file is None and self.sock is not None:
            self.file = io.BufferedReader(_Replies(self, self.sock))
        try:
            code, msg = super().getreply()
        finally:
            self.reply_deadline = math.inf
            if self.sock is not None:  # for what is sent next (and a STARTTLS handshake)
                self.sock.settimeout(self._within())
        if self.log is not None:
            lines = msg.split(b"\n")
            for n, line in enumerate(lines):
                sep = "-" if n < len(lines) - 1 else " "
                self.log(f"< {code}{sep}{line.decode('utf-8', 'replace')}")
            if code != 334:
                self._in_auth = False
        return code, msg


class TlsSession(Session, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465)."""


# -- opening ------------------------------------------------------------------


def open_session(
    config: SmtpConfig,
    *,
    password: str | None,
    context: ssl.SSLContext | None,
    local_hostname: str | None,
    log: Log | None,
    tokens: Tokens | None = None,
) -> Session:
    """A session greeted, secured and logged in (by password, or by OAuth2 with
    ``tokens``), ready for MAIL FROM."""
    c = config
    where = address(c)
    if log is not None:
        log(f"* connecting to {where} ({c.security})")
    smtp: Session
    if c.security == "tls":
        smtp = TlsSession(
            log=log,
            local_hostname=local_hostname,
            timeout=c.timeout,
            context=context,
        )
    else:
        smtp = Session(log=log, local_hostname=local_hostname, timeout=c.timeout)
    # smtplib checks the certificate against ``_host``, which only its
    # constructor sets (and the constructor would connect before we could
    # tell a refusal from a bad greeting).
    smtp._host = c.host  # type: ignore[attr-defined]
    smtp.setup_deadline = time.monotonic() + c.timeout
    try:
        code, msg = smtp.connect(c.host, c.port)
        if code != 220:
            raise Failure(
                f"the mail server {where} turned us away when we connected: "
                f"{code} {reply_text(msg)}",
                permanent=code >= 500,
                throttled=is_throttle(code, reply_text(msg)),
            )
        if smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        smtp.ehlo_or_helo_if_needed()
        if c.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise Failure(
                    f"the mail server {where} does not offer STARTTLS, so the "
                    "messages (and the password) would cross the network unencrypted. "
                    "Check [smtp] port (587 is usual for STARTTLS, 465 needs "
                    'security = "tls"); use security = "none" only for a relay on this '
                    "machine",
                    permanent=True,
                )
            smtp.starttls(context=context)
            if log is not None:
                log(f"* TLS started ({_tls_version(smtp)})")
            smtp.ehlo_or_helo_if_needed()  # again: what it offers may change over TLS
        elif c.security == "tls" and log is not None:
            log(f"* TLS ({_tls_version(smtp)})")
        if tokens is not None:
            _login_oauth(smtp, c, tokens)
        elif c.username:
            _login(smtp, c, password)
        smtp.setup_deadline = math.inf
        smtp.last_used = time.monotonic()
        return smtp
    except Failure:
        smtp.close()
        raise
    except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
        smtp.close()
        raise explain(exc, c) from None


def _tls_version(smtp: Session) -> str:
    sock = smtp.sock
    return (sock.version() or "TLS") if isinstance(sock, ssl.SSLSocket) else "TLS"


def _login(smtp: Session, config: SmtpConfig, password: str | None) -> None:
    c = config
    assert c.username is not None and password is not None
    if not smtp.has_extn("auth"):
        hint = (
            " Servers usually offer it only over TLS: check [smtp] security."
            if c.security == "none"
            else " Remove [smtp] username if this relay needs no login."
        )
        raise Failure(
            f"[smtp] username is set, but the mail server {address(c)} does not offer "
            f"a login (AUTH) on this connection.{hint}",
            permanent=True,
        )
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
        if mechanism in offered:
            break
    else:
        raise Failure(
            f"the mail server {address(c)} offers logins by {', '.join(offered)} only, "
            "and we know PLAIN, LOGIN and CRAM-MD5",
            permanent=True,
        )
    try:
        code, reply = _authenticate(smtp, mechanism, c.username, password)
    except UnicodeEncodeError:
        raise Failure(
            "the username or password has characters other than plain ASCII, which "
            "logins by CRAM-MD5 cannot carry",
            permanent=True,
        ) from None
    if code not in (235, 503):  # 503: already logged in
        raise Failure(
            f"the mail server {address(c)} did not accept the username '{c.username}' "
            f"with the password in {c.password_env} ({code} {reply_text(reply)}). Check "
            "[smtp] username and the password",
            permanent=code >= 500,
        )


def _login_oauth(smtp: Session, config: SmtpConfig, tokens: Tokens) -> None:
    """AUTH XOAUTH2 with a token for ``username``; a refused token is fetched anew once
    (it may have expired or been revoked since it was cached)."""
    from .oauth import xoauth2

    c = config
    assert c.username is not None
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    if "XOAUTH2" not in offered:
        found = f"offers logins by {', '.join(offered)} only" if offered else "offers no login"
        raise Failure(
            f"the mail server {address(c)} {found}, not the OAuth2 sign-in (XOAUTH2) that "
            f'[smtp] auth = "{c.auth}" needs. Check [smtp] host: smtp.office365.com (port '
            '587, security = "starttls") for Microsoft 365, smtp.gmail.com for Google',
            permanent=True,
        )
    for attempt in (1, 2):
        code, reply = smtp.docmd("AUTH", "XOAUTH2 " + xoauth2(c.username, tokens.token()))
        if code == 334:  # the error, as a challenge (Google): an empty answer ends it
            code, reply = smtp.docmd("")
        if code in (235, 503):  # 503: already logged in
            return
        if attempt == 1 and 500 <= code < 600:
            tokens.forget()
    raise Failure(tokens.refused(code, reply_text(reply)), permanent=code >= 500)


def _authenticate(smtp: Session, mechanism: str, user: str, password: str) -> tuple[int, bytes]:
    """AUTH PLAIN or LOGIN with UTF-8 credentials (smtplib's own allow only ASCII)."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    if mechanism == "PLAIN":
        return smtp.docmd("AUTH", "PLAIN " + b64(f"\0{user}\0{password}"))
    if mechanism == "LOGIN":
        code, reply = smtp.docmd("AUTH", "LOGIN")
        if code == 334:
            code, reply = smtp.docmd(b64(user))
        if code == 334:
            code, reply = smtp.docmd(b64(password))
        return code, reply
    smtp.user, smtp.password = user, password
    try:
        return smtp.auth(mechanism, smtp.auth_cram_md5)
    except smtplib.SMTPAuthenticationError as exc:
        error = exc.smtp_error
        return exc.smtp_code, error.encode() if isinstance(error, str) else error
    finally:
        smtp.password = ""


# -- one message --------------------------------------------------------------


def dot_stuff(data: bytes) -> bytes:
    """SMTP DATA transparency (RFC 5321 4.5.2): double a '.' that starts a line.

    ``MessageTemplate.render`` output never has such a line, so this returns it
    unchanged; it is here for bytes from elsewhere. The caller still ends DATA
    with CRLF.CRLF.
    """
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


def _expect(reply: tuple[int, bytes], ok: Callable[[int], bool]) -> Outcome | None:
    """None when the reply is what we wanted; else what it means for the message."""
    code, msg = reply
    if ok(code):
        return None
    if code == 421 or code < 200:
        # 421: the server is closing the connection; <200 (e.g. -1): garbage.
        raise Dropped(code if code > 0 else None, f"{code} {reply_text(msg)}".strip())
    return Outcome("failed" if code >= 500 else "deferred", code, reply_text(msg))


def _is_2xx(code: int) -> bool:
    return 200 <= code < 300


def _is_354(code: int) -> bool:
    return code == 354


def deliver(smtp: Session, job: Job, *, data_timeout: float) -> Outcome:
    """One message on an open session. Raises Dropped when the connection goes
    before the message is whole with the server; after that, no answer within
    ``data_timeout`` seconds is the outcome ``unknown``."""
    env = job.envelope
    data = job.data
    try:
        utf8 = not (env.sender.isascii() and env.recipient.isascii())
        if utf8 and not smtp.has_extn("smtputf8"):
            return Outcome(
                "failed",
                None,
                "the address has non-ASCII characters and the server does not offer SMTPUTF8",
            )
        options = ""
        if utf8:
            options += " SMTPUTF8"
        if not data.isascii() and smtp.has_extn("8bitmime"):
            options += " BODY=8BITMIME"
        mail = f"MAIL FROM:<{env.sender}>{options}\r\n"
        rcpt = f"RCPT TO:<{env.recipient}>\r\n"
        steps: list[tuple[str, Callable[[int], bool]]] = [
            (mail, _is_2xx),
            (rcpt, _is_2xx),
            ("DATA\r\n", _is_354),
        ]
        problem: Outcome | None = None
        got_354 = False
        if smtp.has_extn("pipelining"):
            # RFC 2920: the three commands in one write, DATA last; then every reply.
            smtp.send("".join(cmd for cmd, _ in steps).encode("utf-8"))
            for _, ok in steps:
                reply = smtp.getreply()
                got_354 = reply[0] == 354
                outcome = _expect(reply, ok)
                problem = problem or outcome
        else:
            for cmd, ok in steps:
                smtp.send(cmd.encode("utf-8"))
                reply = smtp.getreply()
                got_354 = reply[0] == 354
                problem = _expect(reply, ok)
                if problem:
                    break
        if problem is not None:
            if got_354:  # DATA accepted despite a failed step: end it empty
                smtp.send(b".\r\n")
                smtp.getreply()
            _reset(smtp)
            return problem
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        if smtp.log is not None:
            smtp.log(f"> ({len(data):,} bytes of message data)")
            smtp.log("> .")
        assert smtp.sock is not None
        smtp.sock.sendall(dot_stuff(data) + b".\r\n")
        return _answer_to_data(smtp, data_timeout)
    except (smtplib.SMTPException, OSError) as exc:
        # SMTPServerDisconnected, a socket error or a timeout (both OSError).
        smtp.close()
        raise Dropped(None, str(exc) or type(exc).__name__) from None
    except Dropped:
        smtp.close()
        raise
    finally:
        smtp.last_used = time.monotonic()


def _answer_to_data(smtp: Session, seconds: float) -> Outcome:
    """The reply to the final ".": the message is with the server now, so a
    missing answer means it may have arrived (``unknown``), never a retry."""
    try:
        code, msg = smtp.reply_within(seconds)
    except (smtplib.SMTPException, OSError) as exc:
        smtp.close()  # what the server says next, if anything, would be out of step
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            why = f"gave no answer within {seconds:g} s of the end of the message"
        else:
            why = f"closed the connection before answering ({exc or type(exc).__name__})"
        if smtp.log is not None:
            smtp.log(f"* the server {why}")
        return _unanswered(f"the mail server took the message but {why}")
    if 200 <= code < 600:
        return _expect((code, msg), _is_2xx) or Outcome("sent", code, reply_text(msg))
    smtp.close()
    return _unanswered(
        f"the mail server took the message but its answer was not SMTP ('{reply_text(msg)}')"
    )


def _unanswered(what: str) -> Outcome:
    return Outcome(
        "unknown",
        None,
        f"{what}; it may have arrived, so it was not sent again. Ask the recipient "
        "or the server's administrator before sending it to them again",
    )


# -- between messages, and the end ----------------------------------------------


def _reset(smtp: Session) -> None:
    """RSET after a refused step, to use the connection again; close it if that fails."""
    try:
        smtp.send(b"RSET\r\n")
        if _is_2xx(smtp.getreply()[0]):
            return
    except (smtplib.SMTPException, OSError):
        pass
    smtp.close()


def still_there(smtp: Session) -> Session | None:
    """A connection idle for a while: NOOP, so a server's idle timeout costs no attempt."""
    try:
        if smtp.noop()[0] == 250:
            smtp.last_used = time.monotonic()
            return smtp
    except (smtplib.SMTPException, OSError):
        pass
    smtp.close()
    return None


def quit_session(smtp: Session) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()
