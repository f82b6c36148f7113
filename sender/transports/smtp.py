"""SMTP: a pool of reused, TLS-verified connections sharing one rate limit.

Each connection is a thread with its own ``smtplib`` session (measured on this
machine: threads beat aiosmtplib). The caller's jobs are read lazily in the
calling thread into a small bounded queue, so a generator over 100,000 people
is never held in memory and the caller's own objects (a SQLite cursor, say)
are only touched from the thread that made them.

Per message, on a connection already greeted, secured and logged in:
``MAIL FROM``, ``RCPT TO`` and ``DATA`` (in one write when the server offers
PIPELINING), then the message bytes, dot-stuffed, and the final reply. The
bytes are sent as they are: no per-message line-ending pass as in
``smtplib.sendmail``.

What happens to a message:

* 2xx after the data: ``sent``.
* 5xx at any step: ``failed``, not tried again; ``RSET`` and carry on.
* 4xx: tried again within the run after a backoff (1 s, 2 s, 4 s, … by
  default), up to ``tries`` attempts, then ``deferred``; ``RSET`` and carry on.
* The connection drops (no reply, a 421, a socket error or a timeout): the
  connection is opened again and the message tried again, counting as an
  attempt; ``deferred`` when the tries run out.

``on_start`` is called just before ``MAIL FROM`` of each attempt and
``on_done`` once per message with its final outcome, from the worker threads.
A job read from the iterable but never started (because of a stop) gets
neither: it was never handed to the server.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import math
import os
import smtplib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..config import SmtpConfig
from ..message import dot_stuff
from .outcome import Job, Outcome, TransportError

__all__ = ["Job", "RateLimiter", "SmtpTransport"]

Log = Callable[[str], None]
Clock = Callable[[], float]

_MAX_BACKOFF = 60.0  # seconds: the longest wait before trying a message again
_STALE_AFTER = 10.0  # seconds idle before a reused connection is checked with NOOP
_REDACTED = "********"
_CERT_UNTRUSTED = {2, 18, 19, 20, 21, 27}  # OpenSSL verify codes: unknown issuer, self-signed…
_CERT_WRONG_NAME = {62, 64}  # hostname / IP address mismatch


# ---------------------------------------------------------------------------
# Rate limit


class RateLimiter:
    """One limit shared by every connection: a token bucket and two caps.

    * ``rate`` messages a second, evenly spaced (a bucket holding one token, so
      no burst after a pause). ``None``, 0 or infinity: no per-second limit.
    * ``per_minute`` / ``per_hour``: at most that many in ANY 60 s / 3600 s
      window (a sliding window, stricter than a second bucket would be, as
      providers such as Microsoft 365 count: 30 a minute).

    ``reserve()`` claims the next slot and says how long to wait for it; it
    never sleeps, so it is tested with a fake ``clock``.
    """

    def __init__(
        self,
        rate: float | None,
        per_minute: int | None = None,
        per_hour: int | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._interval = 1.0 / rate if rate and rate > 0 and math.isfinite(rate) else 0.0
        self._windows: list[tuple[deque[float], float]] = [
            (deque(maxlen=cap), period)
            for cap, period in ((per_minute, 60.0), (per_hour, 3600.0))
            if cap and cap > 0
        ]
        self._clock = clock
        self._next = -math.inf
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return not self._interval and not self._windows

    def reserve(self) -> float:
        """Claim the next free slot; return the seconds until it (0: go now)."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            for times, period in self._windows:
                if len(times) == times.maxlen:
                    slot = max(slot, times[0] + period)
            self._next = slot + self._interval
            for times, _ in self._windows:
                times.append(slot)
            return slot - now


# ---------------------------------------------------------------------------
# One connection


class _Failure(Exception):
    """Opening a connection failed. ``permanent``: trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class _Dropped(Exception):
    """The connection went away while a message was on it."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _text(msg: bytes | str) -> str:
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(msg.split("\n")).strip()


class _Smtp(smtplib.SMTP):
    """smtplib's session, with each line of the conversation logged, AUTH redacted."""

    def __init__(self, *, log: Log | None, **kwargs: object) -> None:
        self.log = log
        self._in_auth = False
        self.last_used = time.monotonic()
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def send(self, s: str | bytes) -> None:  # type: ignore[override]
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
        code, msg = super().getreply()
        if self.log is not None:
            lines = msg.split(b"\n")
            for n, line in enumerate(lines):
                sep = "-" if n < len(lines) - 1 else " "
                self.log(f"< {code}{sep}{line.decode('utf-8', 'replace')}")
            if code != 334:
                self._in_auth = False
        return code, msg


class _SmtpTls(_Smtp, smtplib.SMTP_SSL):
    """The same over implicit TLS (port 465)."""


def _expect(reply: tuple[int, bytes], ok: Callable[[int], bool]) -> Outcome | None:
    """None when the reply is what we wanted; else what it means for the message."""
    code, msg = reply
    if ok(code):
        return None
    if code == 421 or code < 200:
        # 421: the server is closing the connection; <200 (e.g. -1): garbage.
        raise _Dropped(code if code > 0 else None, f"{code} {_text(msg)}".strip())
    return Outcome("failed" if code >= 500 else "deferred", code, _text(msg))


def _is_2xx(code: int) -> bool:
    return 200 <= code < 300


def _is_354(code: int) -> bool:
    return code == 354


def _deliver(smtp: _Smtp, job: Job) -> Outcome:
    """One message on an open session. Raises _Dropped when the connection goes."""
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
        reply = smtp.getreply()
        return _expect(reply, _is_2xx) or Outcome("sent", reply[0], _text(reply[1]))
    except (smtplib.SMTPException, OSError) as exc:
        # SMTPServerDisconnected, a socket error or a timeout (both OSError).
        smtp.close()
        raise _Dropped(None, str(exc) or type(exc).__name__) from None
    except _Dropped:
        smtp.close()
        raise
    finally:
        smtp.last_used = time.monotonic()


# ---------------------------------------------------------------------------
# The pool's shared work


@dataclass(eq=False)
class _Item:
    job: Job
    attempts: int = 0
    started: bool = False
    finished: bool = False
    last: Outcome | None = None


class _Work:
    """Fresh jobs (a bounded queue), jobs waiting to be tried again, and who is busy.

    Workers wait on ``has_work``; the reader of the caller's jobs (and
    ``wait_done``) on ``has_room``. Both share one lock, and each is woken only
    when there is something for it, so a message costs no needless thread switch.
    """

    def __init__(self, workers: int, room: int) -> None:
        lock = threading.Lock()
        self.has_work = threading.Condition(lock)
        self.has_room = threading.Condition(lock)
        self.halted = threading.Event()
        self.fresh: deque[_Item] = deque()
        self.room = room
        self.later: list[tuple[float, int, _Item]] = []
        self._seq = itertools.count()
        self.closed = False
        self.busy = 0
        self.live = workers
        self.error: BaseException | None = None
        self.lost: str | None = None  # why the last worker gave up connecting

    def _halt(self) -> None:
        self.halted.set()
        self.has_work.notify_all()
        self.has_room.notify_all()

    def halt(self, error: BaseException | None = None) -> None:
        with self.has_work:
            if error is not None and self.error is None:
                self.error = error
            self._halt()

    def put(self, item: _Item, stop: threading.Event) -> bool:
        """Queue a fresh job (waiting while the queue is full); False: halted."""
        with self.has_room:
            while True:
                if stop.is_set():
                    self._halt()
                if self.halted.is_set():
                    return False
                if len(self.fresh) < self.room:
                    self.fresh.append(item)
                    self.has_work.notify()
                    return True
                self.has_room.wait(0.1)  # wake up to look at `stop` now and then

    def close(self) -> None:
        with self.has_work:
            self.closed = True
            self.has_work.notify_all()

    def get(self) -> _Item | None:
        """The next job to work on, a due retry first; None: nothing left, or halted."""
        with self.has_work:
            while True:
                if self.halted.is_set():
                    return None
                now = time.monotonic()
                if self.later and self.later[0][0] <= now:
                    self.busy += 1
                    return heapq.heappop(self.later)[2]
                if self.fresh:
                    self.busy += 1
                    if len(self.fresh) <= self.room // 2:
                        self.has_room.notify()  # the reader refills half the queue at once
                    return self.fresh.popleft()
                if self.closed and not self.later and self.busy == 0:
                    return None
                self.has_work.wait(self.later[0][0] - now if self.later else None)

    def release(self, item: _Item, retry_in: float | None = None) -> None:
        """Done with ``item`` for now; ``retry_in`` seconds: try it again then."""
        with self.has_work:
            self.busy -= 1
            if retry_in is not None:
                heapq.heappush(self.later, (time.monotonic() + retry_in, next(self._seq), item))
                self.has_work.notify()  # a waiting worker may now have an earlier deadline
            elif self.busy == 0 and self.closed and not self.fresh and not self.later:
                self.has_work.notify_all()  # all done: let the others leave

    def retire(self, lost: str | None = None) -> None:
        """A worker leaves; when the last one leaves, the run is over (or halted)."""
        with self.has_work:
            self.live -= 1
            if lost is not None:
                self.lost = lost
            if self.live == 0:
                self._halt()
            self.has_room.notify_all()

    def wait_done(self, stop: threading.Event) -> None:
        with self.has_room:
            while self.live > 0:
                if stop.is_set() and not self.halted.is_set():
                    self._halt()
                self.has_room.wait(0.1)

    def leftovers(self) -> list[_Item]:
        with self.has_work:
            items = [entry[2] for entry in sorted(self.later, key=lambda e: e[:2])]
            items += self.fresh
            self.later.clear()
            self.fresh.clear()
            return items


# ---------------------------------------------------------------------------
# The transport


class SmtpTransport:
    """Deliver over SMTP: ``check()`` first, then ``send_all`` the jobs."""

    name = "smtp"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        password: str | None,
        log: Log | None = None,
        backoff: float = 1.0,
        clock: Clock = time.monotonic,
        local_hostname: str | None = None,
    ) -> None:
        self.config = config
        self._password = password
        self._log = log
        self._log_lock = threading.Lock()
        self._backoff = backoff
        self.limiter = RateLimiter(config.rate, config.per_minute, config.per_hour, clock=clock)
        self._local_hostname = local_hostname
        self._context: ssl.SSLContext | None = None
        self._ready = False

    def __repr__(self) -> str:  # never the password
        c = self.config
        return f"SmtpTransport({c.host}:{c.port}, {c.security}, user={c.username!r})"

    # -- set-up -----------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _prepare(self) -> None:
        """Everything that needs no network: password present, CA file readable."""
        if self._ready:
            return
        c = self.config
        if c.username and not self._password:
            raise TransportError(
                f"[smtp] username is set to '{c.username}' but there is no password: set "
                f"the environment variable {c.password_env} to it before sending (the "
                "password is never kept in newsletter.toml)"
            )
        if c.security in ("starttls", "tls"):
            cafile = str(c.ca_file) if c.ca_file else None
            if c.ca_file is not None and not Path(c.ca_file).is_file():
                raise TransportError(
                    f"the CA file named in [smtp] ca_file, {c.ca_file}, does not exist: "
                    "check the path (relative to newsletter.toml)"
                )
            try:
                self._context = ssl.create_default_context(cafile=cafile)
            except ssl.SSLError as exc:
                raise TransportError(
                    f"the CA file named in [smtp] ca_file, {c.ca_file}, is not a PEM "
                    f"certificate file ({exc.reason or exc}): ask for the CA certificate "
                    "in PEM form (text starting with -----BEGIN CERTIFICATE-----)"
                ) from None
        if self._local_hostname is None:
            self._local_hostname = socket.getfqdn()
        self._ready = True

    def _logger(self, number: int) -> Log | None:
        log = self._log
        if log is None:
            return None
        lock = self._log_lock

        def line(text: str) -> None:
            with lock:
                log(f"[{number}] {text}")

        return line

    def _open(self, number: int) -> _Smtp:
        """A session greeted, secured and logged in, ready for MAIL FROM."""
        c = self.config
        log = self._logger(number)
        if log is not None:
            log(f"* connecting to {self._where} ({c.security})")
        smtp: _Smtp
        if c.security == "tls":
            smtp = _SmtpTls(
                log=log,
                local_hostname=self._local_hostname,
                timeout=c.timeout,
                context=self._context,
            )
        else:
            smtp = _Smtp(log=log, local_hostname=self._local_hostname, timeout=c.timeout)
        # smtplib checks the certificate against ``_host``, which only its
        # constructor sets (and the constructor would connect before we could
        # tell a refusal from a bad greeting).
        smtp._host = c.host  # type: ignore[attr-defined]
        try:
            code, msg = smtp.connect(c.host, c.port)
            if code != 220:
                raise _Failure(
                    f"the mail server {self._where} turned us away when we connected: "
                    f"{code} {_text(msg)}",
                    permanent=code >= 500,
                )
            if smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            smtp.ehlo_or_helo_if_needed()
            if c.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise _Failure(
                        f"the mail server {self._where} does not offer STARTTLS, so the "
                        "messages (and the password) would cross the network unencrypted. "
                        "Check [smtp] port (587 is usual for STARTTLS, 465 needs "
                        'security = "tls"); use security = "none" only for a relay on this '
                        "machine",
                        permanent=True,
                    )
                smtp.starttls(context=self._context)
                if log is not None:
                    log(f"* TLS started ({self._tls_version(smtp)})")
                smtp.ehlo_or_helo_if_needed()  # again: what it offers may change over TLS
            elif c.security == "tls" and log is not None:
                log(f"* TLS ({self._tls_version(smtp)})")
            if c.username:
                self._login(smtp)
            smtp.last_used = time.monotonic()
            return smtp
        except _Failure:
            smtp.close()
            raise
        except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
            smtp.close()
            raise self._explain(exc) from None

    @staticmethod
    def _tls_version(smtp: _Smtp) -> str:
        sock = smtp.sock
        return (sock.version() or "TLS") if isinstance(sock, ssl.SSLSocket) else "TLS"

    def _login(self, smtp: _Smtp) -> None:
        c = self.config
        assert c.username is not None and self._password is not None
        if not smtp.has_extn("auth"):
            hint = (
                " Servers usually offer it only over TLS: check [smtp] security."
                if c.security == "none"
                else " Remove [smtp] username if this relay needs no login."
            )
            raise _Failure(
                f"[smtp] username is set, but the mail server {self._where} does not offer "
                f"a login (AUTH) on this connection.{hint}",
                permanent=True,
            )
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
            if mechanism in offered:
                break
        else:
            raise _Failure(
                f"the mail server {self._where} offers logins by {', '.join(offered)} only, "
                "and we know PLAIN, LOGIN and CRAM-MD5",
                permanent=True,
            )
        try:
            code, reply = _authenticate(smtp, mechanism, c.username, self._password)
        except UnicodeEncodeError:
            raise _Failure(
                "the username or password has characters other than plain ASCII, which "
                "logins by CRAM-MD5 cannot carry",
                permanent=True,
            ) from None
        if code not in (235, 503):  # 503: already logged in
            raise _Failure(
                f"the mail server {self._where} did not accept the username '{c.username}' "
                f"with the password in {c.password_env} ({code} {_text(reply)}). Check "
                "[smtp] username and the password",
                permanent=code >= 500,
            )

    def _explain(self, exc: BaseException) -> _Failure:
        """What went wrong opening a connection, in words a comms officer can act on."""
        c = self.config
        where = self._where
        if isinstance(exc, socket.gaierror):
            return _Failure(
                f"cannot find the mail server '{c.host}' ({exc.strerror}); check [smtp] host "
                "in newsletter.toml, and that this computer is online"
            )
        if isinstance(exc, ConnectionRefusedError):
            return _Failure(
                f"the mail server {c.host} refused the connection on port {c.port}: nothing "
                "is listening there. Check [smtp] host and port in newsletter.toml "
                "(usually 587 for STARTTLS, 465 for TLS)"
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
            exc.__context__, TimeoutError
        ):
            exc = exc.__context__  # smtplib's word for a reply that never came
        if isinstance(exc, TimeoutError):
            hint = ""
            if c.security == "starttls" and c.port == 465:
                hint = ' Port 465 expects security = "tls".'
            return _Failure(
                f"no answer from the mail server {where} within {c.timeout:g} s. Check "
                f"[smtp] host and port, and that this network lets mail out on port "
                f"{c.port}.{hint}"
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = exc.verify_message or exc.reason or str(exc)
            if exc.verify_code in _CERT_WRONG_NAME:
                return _Failure(
                    f"the mail server's certificate is not for the name '{c.host}' ({why}). "
                    "Set [smtp] host to the name the certificate is for (ask your IT team "
                    "which name to use)",
                    permanent=True,
                )
            if exc.verify_code in _CERT_UNTRUSTED:
                named = (
                    f" The CA file {c.ca_file} does not vouch for it: check it is the right one."
                    if c.ca_file
                    else " If this is your organisation's internal relay, name its CA "
                    "certificate file in [smtp] ca_file in newsletter.toml."
                )
                return _Failure(
                    f"the mail server {where} sent a certificate we do not trust ({why}).{named}",
                    permanent=True,
                )
            return _Failure(
                f"the mail server {where} sent a certificate we cannot accept ({why})",
                permanent=True,
            )
        if isinstance(exc, ssl.SSLError):
            hint = (
                " The server may not use TLS from the start on this port: for port 587 or 25 "
                'set security = "starttls".'
                if c.security == "tls"
                else ""
            )
            return _Failure(
                f"could not set up TLS with the mail server {where} ({exc.reason or exc}).{hint}",
                permanent=True,
            )
        if isinstance(exc, smtplib.SMTPHeloError):
            return _Failure(
                f"the mail server {where} did not accept our greeting (EHLO): "
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            # STARTTLS refused, or a reply we did not expect while setting up.
            return _Failure(
                f"the mail server {where} answered {exc.smtp_code} {_text(exc.smtp_error)} "
                "while we were setting up the connection",
                permanent=exc.smtp_code >= 500,
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            hint = ""
            if c.security != "tls":
                hint = (
                    f" If port {c.port} expects TLS from the start (465 usually does), "
                    'set security = "tls".'
                )
            return _Failure(
                f"the mail server {where} closed the connection while we were setting up "
                f"({exc or 'no reason given'}).{hint}"
            )
        if isinstance(exc, OSError):
            return _Failure(
                f"cannot reach the mail server {where}: {exc.strerror or exc}. Check [smtp] "
                "host and port, and this computer's network connection"
            )
        return _Failure(f"the connection to the mail server {where} failed: {exc}")

    # -- the interface ------------------------------------------------------

    def check(self) -> None:
        """Connect, greet, secure, log in and say goodbye: fail now, not at person one."""
        self._prepare()
        try:
            smtp = self._open(0)
        except _Failure as exc:
            raise TransportError(exc.message) from None
        _quit(smtp)

    def send_all(
        self,
        jobs: Iterable[Job],
        *,
        on_start: Callable[[Job], None],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        """Send every job; return when each one started has had its ``on_done``.

        Raises TransportError when no connection to the server can be made any
        more (after every message in flight got its ``on_done``), and re-raises
        anything the callbacks or ``jobs`` raised.
        """
        self._prepare()
        workers = max(1, self.config.connections)
        work = _Work(workers, room=4 * workers)
        threads = [
            threading.Thread(
                target=self._worker,
                args=(n, work, on_start, on_done, stop),
                name=f"smtp-{n}",
                daemon=True,
            )
            for n in range(1, workers + 1)
        ]
        for t in threads:
            t.start()
        error: BaseException | None = None
        ran_out = False
        try:
            for job in jobs:
                if not work.put(_Item(job), stop):
                    break
            else:
                ran_out = True
        except BaseException as exc:  # from the caller's generator, or Ctrl-C
            error = exc
            work.halt()
        work.close()
        try:
            work.wait_done(stop)
        except BaseException:  # a second Ctrl-C while messages finish: leave now
            work.halt()
            raise
        for t in threads:
            t.join()
        left = work.leftovers()
        for item in left:
            if item.started and not item.finished:
                # Waiting to be tried again when the run stopped: deferred, as it stands.
                item.finished = True
                last = item.last or Outcome("deferred", None, "stopped before the server answered")
                try:
                    on_done(item.job, last)
                except Exception as exc:
                    error = error or exc
        if error is not None:
            raise error
        if work.error is not None:
            raise work.error
        if work.lost and not stop.is_set() and (left or not ran_out):
            raise TransportError(
                f"lost the mail server and could not connect again: {work.lost}. Run the "
                "same command again to carry on where it stopped"
            )

    def close(self) -> None:
        """Nothing stays open between calls: ``send_all`` closes its connections."""

    # -- one worker: one connection -------------------------------------------

    def _retry_in(self, attempt: int) -> float:
        return float(min(self._backoff * 2.0 ** max(attempt - 1, 0), _MAX_BACKOFF))

    def _worker(
        self,
        number: int,
        work: _Work,
        on_start: Callable[[Job], None],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        tries = max(1, self.config.tries)
        smtp: _Smtp | None = None
        failures = 0  # connection attempts failed in a row
        item: _Item | None = None
        lost: str | None = None
        try:
            while True:
                item = work.get()
                if item is None:
                    return
                wait = self.limiter.reserve()
                if wait > 0 and work.halted.wait(wait):
                    work.release(item, 0.0)
                    item = None
                    continue
                if smtp is not None and time.monotonic() - smtp.last_used > _STALE_AFTER:
                    smtp = _still_there(smtp)
                if smtp is None:
                    try:
                        smtp = self._open(number)
                        failures = 0
                    except _Failure as exc:
                        work.release(item, 0.0)  # not started: anyone may take it
                        item = None
                        if exc.permanent:
                            work.halt(TransportError(exc.message))
                            return
                        failures += 1
                        if failures >= max(tries, 2):
                            lost = exc.message
                            return
                        work.halted.wait(self._retry_in(failures))
                        continue
                if stop.is_set():
                    work.halt()
                if work.halted.is_set():
                    work.release(item, 0.0)
                    item = None
                    continue
                on_start(item.job)
                item.attempts += 1
                item.started = True
                try:
                    outcome = _deliver(smtp, item.job)
                    retry = outcome.state == "deferred"
                    if smtp.sock is None:  # closed after a failed RSET
                        smtp = None
                except _Dropped as drop:
                    smtp = None
                    retry = True
                    outcome = Outcome(
                        "deferred",
                        drop.code,
                        f"the connection to the mail server dropped ({drop.reason})",
                    )
                if retry and item.attempts < tries and not (work.halted.is_set() or stop.is_set()):
                    item.last = outcome
                    work.release(item, self._retry_in(item.attempts))
                else:
                    if retry:
                        outcome = Outcome(
                            "deferred",
                            outcome.code,
                            f"{outcome.text} (tried {item.attempts} "
                            f"time{'s' if item.attempts != 1 else ''})",
                        )
                    item.finished = True
                    on_done(item.job, outcome)
                    work.release(item)
                item = None
        except BaseException as exc:
            if item is not None:
                work.release(item, None if item.finished else 0.0)
            work.halt(exc)
        finally:
            if smtp is not None:
                _quit(smtp)
            work.retire(lost)


def _authenticate(smtp: _Smtp, mechanism: str, user: str, password: str) -> tuple[int, bytes]:
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


def _reset(smtp: _Smtp) -> None:
    """RSET after a refused step, to use the connection again; close it if that fails."""
    try:
        smtp.send(b"RSET\r\n")
        if _is_2xx(smtp.getreply()[0]):
            return
    except (smtplib.SMTPException, OSError):
        pass
    smtp.close()


def _still_there(smtp: _Smtp) -> _Smtp | None:
    """A connection idle for a while: NOOP, so a server's idle timeout costs no attempt."""
    try:
        if smtp.noop()[0] == 250:
            smtp.last_used = time.monotonic()
            return smtp
    except (smtplib.SMTPException, OSError):
        pass
    smtp.close()
    return None


def _quit(smtp: _Smtp) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def from_config(config: SmtpConfig, *, log: Log | None = None) -> SmtpTransport:
    """The SMTP transport for a workspace, its password read from the environment.

    The password lives only in the variable named by ``password_env``: never
    in a file, never printed, never logged.
    """
    password = os.environ.get(config.password_env) if config.username else None
    if config.username and not password:
        raise TransportError(
            f"[smtp] username is set but the environment variable {config.password_env} "
            "holding the password is empty. Set it in your shell "
            f"(export {config.password_env}=…) and run the command again; nothing was sent."
        )
    return SmtpTransport(config, password=password, log=log)
