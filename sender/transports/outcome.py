"""What a transport reports for one message, in words the ledger keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..message import Envelope

State = Literal["sent", "deferred", "failed"]


@dataclass(frozen=True)
class Outcome:
    """``sent``; ``deferred`` (a 4xx or a dropped connection: try again later);
    ``failed`` (a 5xx: the server will not take it; do not retry)."""

    state: State
    code: int | None = None
    text: str = ""


class TransportError(Exception):
    """The transport cannot work at all (bad host, TLS, password): stop before anyone.

    The message is written for the comms officer and says what to change.
    """


@dataclass(frozen=True)
class Job:
    """One message to deliver. ``key`` is the caller's, handed back in callbacks."""

    envelope: Envelope
    data: bytes  # as the message stage made it: CRLF line ends, not dot-stuffed
    key: object = None
