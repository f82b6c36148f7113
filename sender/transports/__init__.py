"""Where messages go: ``eml`` files in an outbox (the default, no server) or SMTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from .outcome import Job, Outcome, TransportError

__all__ = ["Job", "Outcome", "Transport", "TransportError"]


class Transport(Protocol):
    """Delivers jobs, reporting each one's start and outcome as they happen."""

    name: str

    def check(self) -> None:
        """Fail now, with a message the user can act on, if nothing could be delivered."""
        ...

    def send_all(
        self,
        jobs: Iterable[Job],
        *,
        on_start: Callable[[Job], None],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        """Deliver until ``jobs`` runs out or ``stop`` is set; in-flight jobs finish."""
        ...

    def close(self) -> None: ...
