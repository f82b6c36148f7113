"""The embedded default transport: one ``.eml`` file per recipient.

A mail client opens these directly (Thunderbird, Apple Mail, Outlook), and
nothing needs a server. Files are written whole or not at all (temporary file
then rename), so an interrupted run never leaves half a message. They hold
people's data: folders 0700, files 0600, whatever the umask.
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

    def path_for(self, recipient: str) -> Path:
        """``<folder>/<address>.eml``, lower-cased and file-name safe on every system.

        An address with characters a file name cannot hold gets a short hash of
        itself after the name, the same in every run, so two people never share
        a file (a%b@ and a&b@ would both be a_b@).
        """
        lowered = recipient.lower()
        stem = _UNSAFE.sub("_", lowered).strip("._") or "recipient"
        if stem != lowered:
            stem += "-" + hashlib.sha256(lowered.encode()).hexdigest()[:8]
        return self.folder / f"{stem}.eml"

    def write(self, recipient: str, data: bytes) -> Path:
        path = self.path_for(recipient)
        _private_folder(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
        os.replace(tmp, path)
        return path

    def check(self) -> None:
        try:
            _private_folder(self.folder)
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
        on_start: Callable[[Job], bool],
        on_done: Callable[[Job, Outcome], None],
        stop: threading.Event,
    ) -> None:
        for job in jobs:
            if stop.is_set():
                return
            if on_start(job) is False:  # someone else has claimed that person
                continue
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


def _private_folder(folder: Path) -> None:
    """Make the folder, and any missing above it, 0700: people's data is in them.

    Folders that were there already are left as their owner set them."""
    if folder.is_dir():
        return
    missing = [folder, *(p for p in folder.parents if not p.exists())]
    folder.mkdir(parents=True, exist_ok=True)
    for level in missing:
        os.chmod(level, 0o700)
