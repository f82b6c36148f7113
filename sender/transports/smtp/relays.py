"""Several relays, tried in order (``[[smtp]]`` in newsletter.toml).

The first relay whose preflight passes (it answers, its TLS and login work)
takes the send. When it is lost during the send (its connections refused or
dropped for good), the next relay that passes its preflight carries on with
the people not yet handed over; each message's outcome names the relay that
took it, and the ledger records it. One ``[smtp]`` table is one relay, and
then this module is not involved at all.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator

from ...config import SmtpConfig
from ..base import Job, Outcome, TransportError
from . import SmtpTransport
from .pool import Lost

__all__ = ["Relays"]

Build = Callable[[SmtpConfig], SmtpTransport]


class Relays:
    """The relays of ``[[smtp]]`` as one transport: the first that works is used."""

    name = "smtp"

    def __init__(self, configs: Iterable[SmtpConfig], build: Build) -> None:
        self.configs = list(configs)
        self._build = build
        self._built: dict[int, SmtpTransport] = {}
        self.active: SmtpTransport | None = None
        self._position = -1
        self.problems: list[str] = []  # why each relay passed over was
        self.throttled_before = 0  # slow-downs asked by relays no longer in use

    def __repr__(self) -> str:
        return f"Relays({', '.join(c.account for c in self.configs)})"

    def _transport(self, n: int) -> SmtpTransport:
        if n not in self._built:
            self._built[n] = self._build(self.configs[n])
        return self._built[n]

    def _take_next(self) -> None:
        """Make the next relay that passes its preflight the active one."""
        for n in range(self._position + 1, len(self.configs)):
            self._position = n
            try:
                transport = self._transport(n)
                transport.check()
            except TransportError as exc:
                self.problems.append(f"relay {n + 1}, {self.configs[n].account}: {exc}")
                continue
            if self.active is not None:
                self.throttled_before += self.active.throttled
            self.active = transport
            return
        self.active = None
        raise TransportError(
            "none of the relays in [[smtp]] could be used, so nothing more was sent:\n"
            + "\n".join(f"  {p}" for p in self.problems)
        )

    def check(self) -> None:
        if self.active is None:
            self._take_next()

    def send_all(
        self,
        jobs: Iterable[Job],
        *,
        on_start: Callable[[Job], bool],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        """Send through the active relay; when it is lost, the next carries on with
        the jobs it had read but not started, then the rest."""
        self.check()
        source = iter(jobs)
        waiting: dict[int, Job] = {}  # read by a relay's pool, not yet started
        lock = threading.Lock()

        def feed(replay: list[Job]) -> Iterator[Job]:
            for job in itertools.chain(replay, source):  # lazily: never the whole list
                with lock:
                    waiting[id(job)] = job
                yield job

        def started(job: Job) -> bool:
            with lock:
                waiting.pop(id(job), None)
            return on_start(job)

        replay: list[Job] = []
        while True:
            active = self.active
            assert active is not None
            try:
                active.send_all(
                    feed(replay), on_start=started, on_done=on_done, stop=stop, hand_over=True
                )
                return
            except Lost as exc:
                self.problems.append(f"relay {self._position + 1}, {active.config.account}: {exc}")
                try:
                    self._take_next()
                except TransportError:
                    for job, outcome in exc.unfinished:  # nobody left to try them
                        on_done(job, outcome)
                    raise
                with lock:  # those it had started first, then those it had only read
                    replay = [job for job, _ in exc.unfinished] + list(waiting.values())
                    waiting.clear()

    def close(self) -> None:
        for transport in self._built.values():
            transport.close()

    @property
    def relay(self) -> str:
        return self.active.relay if self.active is not None else self.configs[0].account

    @property
    def daily(self) -> tuple[str, int] | None:
        """The active relay's daily quota (each relay account has its own)."""
        return self.active.daily if self.active is not None else None

    @property
    def throttled(self) -> int:
        now = self.active.throttled if self.active is not None else 0
        return self.throttled_before + now
