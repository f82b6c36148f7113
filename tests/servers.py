"""Real SMTP servers on 127.0.0.1 for the tests: aiosmtpd in-process,
Postfix's smtp-sink as a subprocess, and a slow one on plain sockets. Each is a
context manager, so the test that starts a server stops it, by its own handle,
whatever happens."""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from conftest import need


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_cert(folder: Path, name: str, san: str) -> Cert:
    openssl = need("openssl", "sudo apt-get install openssl")
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={san}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Cert(cert, key)


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


class SlowServer:
    """A small SMTP server on plain sockets, slow where aiosmtpd cannot be made so.

    ``trickle``: answer ``trickle_at`` (the greeting, or a command such as
    ``"MAIL"``) with a continuation line every that many seconds, and never the
    last line. ``answer_after``: seconds before the reply to the final "."
    (None: no reply; the connection stays open until the server stops).
    ``hang_up``: close the connection after the final "." instead of answering.
    ``messages`` holds the data of every message whose final "." arrived.
    """

    def __init__(
        self,
        *,
        trickle: float | None = None,
        trickle_at: str = "greeting",
        answer_after: float | None = 0.0,
        hang_up: bool = False,
    ) -> None:
        self.trickle = trickle
        self.trickle_at = trickle_at.encode()
        self.answer_after = answer_after
        self.hang_up = hang_up
        self.messages: list[bytes] = []
        self.connections = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SlowServer:
        self._accepting.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping.set()
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self.listener.close()
        self._accepting.join(5)
        with self._lock:
            for s in self._sockets:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self.connections += 1
                self._sockets.append(conn)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines, suppress(OSError):
            self._converse(conn, lines)

    def _converse(self, conn: socket.socket, lines: Any) -> None:
        if self.trickle_at == b"greeting" and self._trickled(conn, b"220"):
            return
        conn.sendall(b"220 slow.test ESMTP\r\n")
        for line in lines:
            verb = line[:4].upper()
            if verb == self.trickle_at and self._trickled(conn, b"250"):
                return
            if verb == b"EHLO":
                conn.sendall(b"250-slow.test\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                data = b""
                while (got := lines.readline()) != b".\r\n":
                    if not got:
                        return  # the client went away mid-message: not a message
                    data += got
                with self._lock:
                    self.messages.append(data)
                if self.hang_up:
                    return
                if self.answer_after is None:
                    self._stopping.wait()
                    return
                if self._stopping.wait(self.answer_after):
                    return
                conn.sendall(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                conn.sendall(b"250 2.0.0 Ok\r\n")
            else:
                conn.sendall(b"502 5.5.2 Not implemented\r\n")

    def _trickled(self, conn: socket.socket, code: bytes) -> bool:
        """Trickle a reply that never ends, until the server stops (if trickling)."""
        if self.trickle is None:
            return False
        while not self._stopping.wait(self.trickle):
            conn.sendall(code + b"-slow.test still working on it\r\n")
        return True
