"""Wall time and waiting, in one object.

The daily quota (what a relay took in the last 24 hours), ``send --wait`` and
``send --at`` all ask a ``Clock`` what time it is and wait through it, so a
test moves time on by a day instead of sleeping one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["DAY", "Clock", "stamp", "when_words"]

DAY = timedelta(hours=24)


class Clock:
    """The real time (UTC), and waits that a stop event cuts short."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(
        self,
        when: datetime,
        stop: threading.Event,
        tick: Callable[[timedelta], None] | None = None,
    ) -> bool:
        """Wait until ``when``; False when ``stop`` was set first. ``tick(left)`` about
        once a second, for a countdown."""
        while True:
            left = when - self.now()
            if left <= timedelta(0):
                return not stop.is_set()
            if tick is not None:
                tick(left)
            if stop.wait(min(left.total_seconds(), 1.0)):
                return False


def stamp(moment: datetime) -> str:
    """A time as the ledger writes it (ISO 8601, UTC, milliseconds), to compare with its rows."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def when_words(moment: datetime, now: datetime) -> str:
    """'09:14 today', '09:14 tomorrow' or '09:14 on Thursday 5 March', in local time."""
    local, today = moment.astimezone(), now.astimezone().date()
    at = local.strftime("%H:%M")
    if local.date() == today:
        return f"{at} today"
    if local.date() == today + timedelta(days=1):
        return f"{at} tomorrow"
    return f"{at} on {local.strftime('%A')} {local.day} {local.strftime('%B')}"
