"""The embedded default transport: one ``.eml`` file per recipient.

A mail client opens these directly (Thunderbird, Apple Mail, Outlook), and
nothing needs a server. Files are written whole or not at all (temporary file
then rename), so an interrupted run never leaves half a message.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ..message import Envelope

_UNSAFE = re.compile(r"[^a-z0-9._@+-]+")


class EmlOutbox:
    name = "eml"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._written: dict[str, str] = {}

    def path_for(self, recipient: str) -> Path:
        """``<folder>/<address>.eml``, lower-cased and file-name safe on every system."""
        stem = _UNSAFE.sub("_", recipient.lower()).strip("._") or "recipient"
        owner = self._written.get(stem)
        if owner is not None and owner != recipient:
            # Two addresses that differ only in characters we had to replace:
            # never let the second overwrite the first.
            stem += "-" + hashlib.sha256(recipient.encode()).hexdigest()[:8]
        self._written[stem] = recipient
        return self.folder / f"{stem}.eml"

    def deliver(self, envelope: Envelope, data: bytes) -> str:
        path = self.path_for(envelope.recipient)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return str(path)

    def close(self) -> None:
        pass
