"""The rate limit every connection of a send shares."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Clock", "RateLimiter"]

Clock = Callable[[], float]

SLOWEST = 1 / 60  # messages a second: however often the server throttles, one a minute
RECOVERY = 120.0  # seconds of sending to climb back from nothing to the full rate
_OBSERVED = 32  # reservations kept to tell how fast an unlimited send was going


class RateLimiter:
    """One limit shared by every connection: a token bucket and two caps.

    * ``rate`` messages a second, evenly spaced (a bucket holding one token, so
      no burst after a pause). ``None``, 0 or infinity: no per-second limit.
    * ``per_minute`` / ``per_hour``: at most that many in ANY 60 s / 3600 s
      window (a sliding window, stricter than a second bucket would be, as
      providers such as Microsoft 365 count: 30 a minute).

    ``reserve()`` claims the next slot and says how long to wait for it; it
    never sleeps, so it is tested with a fake ``clock``.

    When the server throttles (``slow_down()``), the rate is halved, from
    what it is or, with no limit, from how fast messages were going; each
    message that then goes through (``recover()``) adds a little back, so
    the rate climbs to the full one again in about ``RECOVERY`` seconds of
    sending (AIMD, as TCP does).
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
        self._full = self._interval  # the configured spacing, to recover to
        self._ceiling: float | None = None  # while slowed down: the rate to climb back to
        self._recent: deque[float] = deque(maxlen=_OBSERVED)
        self.throttles = 0  # how many times the server asked us to slow down
        self.history: deque[float] = deque(maxlen=10_000)  # the rate after each change

    @property
    def unlimited(self) -> bool:
        return not self._interval and not self._windows

    @property
    def rate(self) -> float | None:
        """Messages a second allowed now; None: no per-second limit."""
        with self._lock:
            return 1.0 / self._interval if self._interval else None

    @property
    def interval(self) -> float:
        """Seconds between two messages now (0: no spacing)."""
        return self._interval

    def slow_down(self) -> float:
        """The server throttled us: halve the rate (never below ``SLOWEST``); the new rate."""
        with self._lock:
            self.throttles += 1
            current = 1.0 / self._interval if self._interval else self._observed()
            if self._ceiling is None:
                self._ceiling = 1.0 / self._full if self._full else current
            rate = max(current / 2.0, SLOWEST)
            self._interval = 1.0 / rate
            self.history.append(rate)
            return rate

    def recover(self) -> None:
        """A message went through: add back about ``ceiling / RECOVERY`` a second of sending."""
        if self._ceiling is None:
            return
        with self._lock:
            if self._ceiling is None:
                return
            rate = 1.0 / self._interval
            rate += self._ceiling / RECOVERY / rate  # one message takes 1/rate seconds
            if rate >= self._ceiling:
                self._interval, self._ceiling = self._full, None
                rate = 1.0 / self._full if self._full else rate
            else:
                self._interval = 1.0 / rate
            self.history.append(rate)

    def _observed(self) -> float:
        """How fast messages were going (lock held): from the recent reservations."""
        times = self._recent
        if len(times) >= 2 and times[-1] > times[0]:
            return (len(times) - 1) / (times[-1] - times[0])
        return 10.0

    def reserve(self) -> float:
        """Claim the next free slot; return the seconds until it (0: go now)."""
        if self.unlimited:
            self._recent.append(self._clock())
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
            self._recent.append(slot)
            return slot - now
