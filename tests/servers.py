"""Real SMTP servers on 127.0.0.1 for the tests: aiosmtpd in-process and
Postfix's smtp-sink as a subprocess. Each is a context manager, so the test
that starts a server stops it, by its own handle, whatever happens."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from conftest import need


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    """An aiosmtpd handler keeping every message; ``greylist`` addresses get one 450."""

    def __init__(self, greylist: Iterable[str] = ()) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.greylist = set(greylist)
        self.seen: set[str] = set()

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: list[str]
    ) -> str:
        if address in self.greylist and address not in self.seen:
            self.seen.add(address)
            return "450 4.2.0 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"

    def by_recipient(self) -> dict[str, bytes]:
        return {rcpt[0]: content for _, rcpt, content in self.messages}


@contextmanager
def aiosmtpd(handler: Recorder, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    kwargs.setdefault("decode_data", False)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def smtp_sink() -> str:
    """smtp-sink lives in /usr/sbin, often not on a user's PATH."""
    found = shutil.which("smtp-sink")
    if found:
        return found
    if os.access("/usr/sbin/smtp-sink", os.X_OK):
        return "/usr/sbin/smtp-sink"
    return need("smtp-sink", "sudo apt-get install postfix (or: bash scripts/setup-tests.sh)")


@dataclass
class Sink:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def counters(self) -> dict[str, int]:
        """smtp-sink -c: sessions and messages so far (read after it stopped)."""
        text = self.log.read_bytes().decode("ascii", "replace")
        found: dict[str, int] = {}
        for name, value in re.findall(r"(sess|quit|mesg)=(\d+)", text):
            found[name] = int(value)
        return found


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, found without connecting
    (a test connection would count as a session in smtp-sink's counters)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(
            fields[1] == want and fields[3] == "0A"  # 0A: LISTEN
            for fields in (line.split() for line in table)
            if len(fields) > 3
        )


@contextmanager
def sink(tmp_path: Path, *flags: str) -> Iterator[Sink]:
    path = smtp_sink()
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    log = tmp_path / f"sink-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [path, *user, "-c", *flags, f"127.0.0.1:{port}", "100"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    s = Sink(port, proc, log)
    try:
        deadline = time.monotonic() + 5
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"smtp-sink did not start: {log.read_text()}")
            time.sleep(0.02)
        yield s
    finally:
        time.sleep(0.05)  # its last counter line
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
