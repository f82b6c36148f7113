"""The embedded default transport: one ``.eml`` file per recipient.

A mail client opens these directly (Thunderbird, Apple Mail, Outlook), and
nothing needs a server. Files are written whole or not at all (temporary file
then rename), so an interrupted run never leaves half a message.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .base import Job, Outcome, TransportError

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

    def write(self, recipient: str, data: bytes) -> Path:
        path = self.path_for(recipient)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return path

    def check(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(
                f"cannot create the outbox folder {self.folder}: {exc.strerror or exc}. "
                "Choose another folder with [send] outbox in newsletter.toml."
            ) from None
        if not os.access(self.folder, os.W_OK):
            raise TransportError(f"you may not write to the outbox folder {self.folder}")

    def send_all(
        self,
        jobs: Iterable[Job],
        *,
        on_start: Callable[[Job], None],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        for job in jobs:
            if stop.is_set():
                return
            on_start(job)
            try:
                path = self.write(job.envelope.recipient, job.data)
            except OSError as exc:
                on_done(job, Outcome("deferred", None, f"could not write the file: {exc}"))
                raise TransportError(
                    f"could not write to {self.folder}: {exc.strerror or exc}. Check there is "
                    "space on the disk; running the same command again carries on."
                ) from None
            on_done(job, Outcome("sent", None, str(path)))

    def close(self) -> None:
        pass
