"""The hand-off between the send and a transport: a job, its outcome, the delivery states.

Both sides import this module and nothing else of each other: the send makes
``Job``s and the ledger records ``Outcome``s without knowing which transport
delivered them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

# What the server said of one message ('unknown': it never answered after the data).
State = Literal["sent", "deferred", "failed", "unknown"]
# Where one person stands for one issue; the ledger's CHECK constraint is made from it.
# 'unknown': the message was handed over but the server's answer never came.
DeliveryState = Literal["pending", "sending", "sent", "deferred", "failed", "unknown"]
DELIVERY_STATES: tuple[DeliveryState, ...] = get_args(DeliveryState)


@dataclass(frozen=True)
class Outcome:
    """``sent``; ``deferred`` (a 4xx or a dropped connection: try again later);
    ``failed`` (a 5xx: the server will not take it; do not retry); ``unknown``
    (the message was handed over and no answer came: it may have arrived, so
    it is not sent again unless the user says so)."""

    state: State
    code: int | None = None
    text: str = ""
    # The relay account that answered (SMTP), for the daily quota: where, not what.
    relay: str = field(default="", compare=False)


class TransportError(Exception):
    """The transport cannot work at all (bad host, TLS, password): stop before anyone.

    The message is written for the comms officer and says what to change.
    """


@dataclass(frozen=True)
class Envelope:
    """What SMTP needs besides the bytes: MAIL FROM, RCPT TO, and the id for the ledger."""

    sender: str
    recipient: str
    message_id: str


@dataclass(frozen=True)
class Job:
    """One message to deliver. ``key`` is the caller's, handed back in callbacks."""

    envelope: Envelope
    data: bytes  # as the message stage made it: CRLF line ends, not dot-stuffed
    key: object = None


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
        on_start: Callable[[Job], bool],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        """Deliver until ``jobs`` runs out or ``stop`` is set; in-flight jobs finish.

        ``on_start(job)`` is called just before a job goes; when it answers
        False (someone else has claimed that person) the job is skipped, with
        no ``on_done``.
        """
        ...

    def close(self) -> None: ...
