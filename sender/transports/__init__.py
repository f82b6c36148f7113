"""Where messages go: ``eml`` files in an outbox (the default, no server) or SMTP."""

from __future__ import annotations

from typing import Protocol

from ..message import Envelope


class Transport(Protocol):
    """Delivers one finished message; raises on failure."""

    name: str

    def deliver(self, envelope: Envelope, data: bytes) -> str:
        """Deliver ``data``; return where it went (a path, or the server's reply)."""
        ...

    def close(self) -> None: ...
