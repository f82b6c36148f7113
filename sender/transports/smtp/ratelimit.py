"""The rate limit every connection of a send shares."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Clock", "RateLimiter"]

Clock = Callable[[], float]


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
