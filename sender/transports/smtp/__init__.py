"""SMTP: a pool of reused, TLS-verified connections sharing one rate limit.

``session`` speaks SMTP on one connection, ``pool`` runs the connections of a
send, ``ratelimit`` paces them and ``explain`` words what goes wrong.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...config import SmtpConfig
from ..base import Job, Outcome, TransportError
from .explain import Failure
from .oauth import Tokens, tokens_from_config
from .pool import Pool
from .ratelimit import Clock, RateLimiter
from .session import Log, Session, open_session, quit_session

if TYPE_CHECKING:
    from .relays import Relays

__all__ = ["Job", "RateLimiter", "SmtpTransport", "from_config", "from_relays"]


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
        tokens: Tokens | None = None,
    ) -> None:
        self.config = config
        self._password = password
        self._tokens = tokens
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

    def _prepare(self) -> None:
        """Everything that needs no network: password present and safe, CA file readable."""
        if self._ready:
            return
        c = self.config
        _refuse_plain_login(c)
        if c.username and not self._password and self._tokens is None:
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

    def _open(self, number: int) -> Session:
        """A session greeted, secured and logged in, ready for MAIL FROM."""
        return open_session(
            self.config,
            password=self._password,
            context=self._context,
            local_hostname=self._local_hostname,
            log=self._logger(number),
            tokens=self._tokens,
        )

    # -- the interface ------------------------------------------------------

    def check(self) -> None:
        """Connect, greet, secure, log in and say goodbye: fail now, not at person one."""
        self._prepare()
        try:
            if self._tokens is not None:  # sign in first: its problems are not the server's
                self._tokens.token()
            smtp = self._open(0)
        except Failure as exc:
            raise TransportError(exc.message) from None
        quit_session(smtp)

    def send_all(
        self,
        jobs: Iterable[Job],
        *,
        on_start: Callable[[Job], bool],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
        hand_over: bool = False,
    ) -> None:
        """Send every job; return when each one started has had its ``on_done``.

        Raises TransportError (``Lost``) when no connection to the server can be
        made any more (after every message in flight got its ``on_done``; with
        ``hand_over``, those waiting to be tried again travel in the error
        instead, for another relay), and re-raises anything the callbacks or
        ``jobs`` raised.
        """
        self._prepare()
        pool = Pool(
            self.config,
            connect=self._open,
            limiter=self.limiter,
            backoff=self._backoff,
            relay=self.config.account,
        )
        pool.send_all(jobs, on_start=on_start, on_done=on_done, stop=stop, hand_over=hand_over)

    def close(self) -> None:
        """Nothing stays open between calls: ``send_all`` closes its connections."""

    @property
    def relay(self) -> str:
        """The relay account, as the ledger records which relay took each message."""
        return self.config.account

    @property
    def daily(self) -> tuple[str, int] | None:
        """(relay account, messages allowed in any 24 hours), when [smtp] per_day is set."""
        per_day = self.config.per_day
        return (self.config.account, per_day) if per_day and per_day > 0 else None

    @property
    def throttled(self) -> int:
        """How many times the server has asked this transport to slow down."""
        return self.limiter.throttles


def from_config(config: SmtpConfig, *, log: Log | None = None) -> SmtpTransport:
    """The SMTP transport for a workspace, its password read from the environment.

    The password lives only in the variable named by ``password_env``: never
    in a file, never printed, never logged. So do OAuth2 secrets and keys
    (``auth = "microsoft"`` or ``"google"``, see ``oauth``).
    """
    _refuse_plain_login(config)
    tokens = tokens_from_config(config)
    if tokens is not None:
        return SmtpTransport(config, password=None, log=log, tokens=tokens)
    password = os.environ.get(config.password_env) if config.username else None
    if config.username and not password:
        raise TransportError(
            f"[smtp] username is set but the environment variable {config.password_env} "
            "holding the password is empty. Set it in your shell "
            f"(export {config.password_env}=…) and run the command again; nothing was sent."
        )
    return SmtpTransport(config, password=password, log=log)


def from_relays(configs: Sequence[SmtpConfig], *, log: Log | None = None) -> SmtpTransport | Relays:
    """The transport for ``[smtp]`` (one relay), or for the relays of ``[[smtp]]``,
    tried in order: a relay whose settings or secrets are missing is passed over
    like one that does not answer."""
    from .relays import Relays

    if len(configs) == 1:
        return from_config(configs[0], log=log)
    return Relays(configs, lambda config: from_config(config, log=log))


def _refuse_plain_login(config: SmtpConfig) -> None:
    """A login over an unencrypted connection only to this computer, or when allowed."""
    c = config
    if c.security != "none" or not c.username or c.allow_plain_auth or _is_loopback(c.host):
        return
    raise TransportError(
        f'[smtp] security = "none" with a username: the password would cross the network '
        f"to {c.host} unencrypted, for anyone on the way to read. Use security = "
        '"starttls" (port 587) or "tls" (port 465), or set allow_plain_auth = true in '
        "[smtp] if this really is a trusted link; nothing was sent"
    )


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: a server on this computer (no name is looked up)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
