"""Where messages go: ``eml`` files in an outbox (the default, no server) or SMTP.

``open_transport`` is the one place a transport is chosen and built, for a
send, a test send and the preview alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .base import DELIVERY_STATES, DeliveryState, Job, Outcome, State, Transport, TransportError

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "DELIVERY_STATES",
    "DeliveryState",
    "Job",
    "Outcome",
    "State",
    "Transport",
    "TransportError",
    "open_transport",
]


def open_transport(
    kind: str, config: Config, *, outbox: Path, log: Callable[[str], None] | None = None
) -> Transport:
    """The transport named ``kind`` ('eml' or 'smtp'), set up from the settings.

    ``outbox`` is the folder an ``eml`` transport writes to. Raises
    TransportError, in the user's words, when the settings cannot work.
    """
    if kind == "eml":
        from .eml import EmlOutbox

        return EmlOutbox(outbox)
    if kind == "smtp":
        from .smtp import from_relays

        return from_relays(config.relays, log=log)
    raise TransportError(f"there is no transport called '{kind}': use eml or smtp")
