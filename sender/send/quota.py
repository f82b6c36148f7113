"""A relay's daily quota ([smtp] per_day), counted in the ledger.

What a relay account took in the last 24 hours is read from the ledger, which
records the relay of every message sent, in any run of any issue; a send
claims at most what is left, then stops cleanly, leaving the rest pending for
when the window opens (or, with ``--wait``, waits for it and carries on).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..clock import DAY, Clock, stamp

__all__ = ["DailyQuota", "Halt", "Quota"]


@dataclass(frozen=True)
class Quota:
    """The daily quota was reached: ``used`` of ``per_day`` in the last 24 hours
    through ``relay``; the next message may go at ``opens``."""

    relay: str
    per_day: int
    used: int
    opens: datetime


class Halt(threading.Event):
    """The stop of one round of sending: set by the send itself (the quota is
    used up), or the user's ``stop`` (Ctrl-C), which it reads as its own."""

    def __init__(self, user: threading.Event) -> None:
        super().__init__()
        self._user = user

    def is_set(self) -> bool:
        return super().is_set() or self._user.is_set()


class _Counts(Protocol):
    def relay_sent(self, relay: str, since: str) -> list[str]: ...


class DailyQuota:
    """What ``relay`` may still send: opened from the ledger before each round,
    taken one message at a time as messages are claimed."""

    def __init__(
        self,
        relay: str,
        per_day: int,
        clock: Clock,
        *,
        wait: bool = False,
        on_wait: Callable[[Quota], None] | None = None,
    ) -> None:
        self.relay, self.per_day, self.clock = relay, per_day, clock
        self.wait, self.on_wait = wait, on_wait
        self.left = 0
        self.reached = False
        self._halt: threading.Event | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(
        cls,
        transport: object,
        clock: Clock,
        *,
        wait: bool = False,
        on_wait: Callable[[Quota], None] | None = None,
    ) -> DailyQuota | None:
        """The quota of a transport that has one (``daily``: relay and per_day), else None."""
        daily: tuple[str, int] | None = getattr(transport, "daily", None)
        if daily is None:
            return None
        return cls(daily[0], daily[1], clock, wait=wait, on_wait=on_wait)

    def _sent(self, ledger: _Counts) -> list[str]:
        return ledger.relay_sent(self.relay, stamp(self.clock.now() - DAY))

    def open(self, ledger: _Counts, halt: threading.Event) -> bool:
        """Begin a round that ``halt`` stops; False when the quota leaves no room now."""
        used = len(self._sent(ledger))
        with self._lock:
            self.left = self.per_day - used
            self.reached = self.left <= 0
            self._halt = halt
        return not self.reached

    def take(self) -> bool:
        """One message may go (False: none may); the last one allowed halts the round."""
        with self._lock:
            if self.left <= 0:
                self.reached = True
                if self._halt is not None:
                    self._halt.set()
                return False
            self.left -= 1
            if self.left == 0:
                self.reached = True
                if self._halt is not None:
                    self._halt.set()
            return True

    def give_back(self) -> None:
        """A message taken did not go after all (someone else had claimed it)."""
        with self._lock:
            self.left += 1

    def report(self, ledger: _Counts) -> Quota:
        """How much of the quota is used, and when the next message may go."""
        sent = self._sent(ledger)
        used = len(sent)
        if used >= self.per_day:
            # When enough of the window's messages are a day old for one more to go.
            opens = datetime.fromisoformat(sent[used - self.per_day]) + DAY
        else:
            opens = self.clock.now()
        return Quota(self.relay, self.per_day, used, opens)

    def wait_for(self, quota: Quota, stop: threading.Event) -> bool:
        """With ``wait``: tell ``on_wait``, then wait until ``quota.opens``; False when
        not waiting, or stopped first."""
        if not self.wait:
            return False
        if self.on_wait is not None:
            self.on_wait(quota)
        return self.clock.sleep_until(quota.opens, stop)
