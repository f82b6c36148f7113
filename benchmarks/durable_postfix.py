"""A throwaway Postfix that queues every message durably, then throws it away.

smtp-sink answers "250" without keeping anything, so a sender that writes each
message's fate to disk before the next is measured against a receiver that
writes nothing. A real mail server writes each message to its queue, with an
fsync, before it answers: this one does, as Postfix does, then hands the
message to the ``discard`` transport. It is a fair anchor for a durable sender.

Everything lives in a temporary folder of its own: ``main.cf`` (its own queue
and data directories, ``smtpd`` on a free 127.0.0.1 port, every transport
``discard``), ``master.cf`` (the system's, with every chroot column ``n`` and
the ``smtp inet`` line replaced by one for that port) and the queue folders
with the owners Postfix insists on. The master runs in the foreground
(``master -c DIR -d``: with no syslog, ``postfix start`` fails without a word),
logging to its standard output, and is stopped by its own process id. It must
run as root, as Postfix's master does. Needs Debian's ``postfix`` package
(``bash scripts/setup-tests.sh`` installs it).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MASTER = Path("/usr/lib/postfix/sbin/master")
SYSTEM_MASTER_CF = (Path("/etc/postfix/master.cf"), Path("/usr/share/postfix/master.cf.dist"))
# Queue folders, with the owner, group and mode Postfix checks when it starts.
QUEUE = {
    "pid": ("root", "root", 0o755),
    "maildrop": ("postfix", "postdrop", 0o730),
    "public": ("postfix", "postdrop", 0o710),
    **dict.fromkeys(
        [
            *("active", "bounce", "corrupt", "defer", "deferred", "flush"),
            *("hold", "incoming", "private", "saved", "trace"),
        ],
        ("postfix", "root", 0o700),
    ),
}
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench-postfix.localdomain
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
default_transport = discard
relay_transport = discard
local_transport = discard
maillog_file = /dev/stdout
message_size_limit = 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str | None:
    """None when a durable Postfix can be started here, else why not."""
    if os.geteuid() != 0:
        return "Postfix's master must run as root"
    if not MASTER.exists():
        return f"{MASTER} not found: apt-get install postfix (or bash scripts/setup-tests.sh)"
    if not any(p.exists() for p in SYSTEM_MASTER_CF):
        return "no master.cf to start from (/etc/postfix/master.cf)"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or postdrop group is missing: reinstall postfix"
    return None


def _master_cf(port: int) -> str:
    source = next(p for p in SYSTEM_MASTER_CF if p.exists())
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if line[:1] in ("#", " ", "\t") or len(fields) < 8:
            lines.append(line)  # comments and continuation lines (arguments) as they are
            continue
        if fields[0] == "smtp" and fields[1] == "inet":
            fields[0] = f"127.0.0.1:{port}"
        fields[4] = "n"  # no chroot: the queue is a temporary folder
        lines.append("  ".join(fields))
    return "\n".join(lines) + "\n"


class DurablePostfix:
    """One private Postfix instance on a free 127.0.0.1 port; ``stop()`` ends it."""

    def __init__(self) -> None:
        why = available()
        if why:
            raise RuntimeError(f"cannot start a durable Postfix: {why}")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="bench-postfix-"))
        os.chmod(self.folder, 0o755)  # Postfix's own processes (user postfix) pass through
        config, queue, data = (self.folder / n for n in ("config", "queue", "data"))
        config.mkdir()
        queue.mkdir(mode=0o755)
        data.mkdir(mode=0o700)
        os.chown(data, pwd.getpwnam("postfix").pw_uid, -1)
        for name, (user, group, mode) in QUEUE.items():
            path = queue / name
            path.mkdir()
            os.chown(path, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)
            os.chmod(path, mode)
        (config / "main.cf").write_text(MAIN_CF.format(queue=queue, data=data), encoding="utf-8")
        (config / "master.cf").write_text(_master_cf(self.port), encoding="utf-8")
        self.log_path = self.folder / "maillog"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(MASTER), "-c", str(config), "-d"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its children are stopped with it, by its group
        )
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the durable Postfix did not start: " + self.log_path.read_text()[-800:]
                )
            time.sleep(0.05)

    def discarded(self) -> int:
        """Messages queued and then discarded so far, from the log."""
        return len(re.findall(rb"status=sent \(", self.log_path.read_bytes()))

    def stop(self, expected: int = 0, settle: float = 30.0) -> int:
        """Stop it (after the queue empties, when ``expected`` is given); how many it took."""
        deadline = time.monotonic() + settle
        while expected and self.discarded() < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        count = self.discarded()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the master's own group, started above
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        return count
