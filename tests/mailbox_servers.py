"""Real mail servers for the inbox tests, on 127.0.0.1, each started in a folder of its
own and stopped by its own process id whatever happens:

- ``dovecot()``: Debian's Dovecot IMAP server, TLS on a free port with a certificate
  the test makes; mail is put in with IMAP APPEND.
- ``postfix_bouncer()``: a private Postfix that turns away mail for some domains
  (error: hard, retry: soft, tried once) and sends the DSNs it writes to a
  receiver on 127.0.0.1, as a real mail server bounces a newsletter.
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from conftest import need
from servers import Cert, free_port, make_cert

USER = "bounces@news.example.org"
PASSWORD = "imap-test-password-7f3a"


def _sbin(tool: str, install: str) -> str:
    """A server binary: /usr/sbin is often not on a user's PATH."""
    found = shutil.which(tool)
    if found:
        return found
    if os.access(f"/usr/sbin/{tool}", os.X_OK):
        return f"/usr/sbin/{tool}"
    return need(tool, install)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} stopped at start:\n{_tail(log)}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port}:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


@dataclass
class Dovecot:
    port: int  # imaps (TLS from the start)
    starttls_port: int  # imap, where STARTTLS is required before logging in
    cert: Cert
    user: str = USER
    password: str = PASSWORD

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.cert.cert))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        imap = self.client()
        try:
            for raw in messages:
                kind, data = imap.append(folder, "", None, raw.replace(b"\r\n", b"\n"))
                assert kind == "OK", data
        finally:
            imap.logout()

    def create(self, folder: str) -> None:
        imap = self.client()
        try:
            kind, data = imap.create(f'"{folder}"')
            assert kind == "OK", data
        finally:
            imap.logout()

    def keywords(self, folder: str = "INBOX") -> list[bytes]:
        """Each message's flags, in order."""
        imap = self.client()
        try:
            imap.select(f'"{folder}"', readonly=True)
            kind, data = imap.fetch("1:*", "(FLAGS)")
            return [d for d in data if isinstance(d, bytes)] if kind == "OK" else []
        finally:
            imap.logout()


@contextmanager
def dovecot() -> Iterator[Dovecot]:
    binary = _sbin(
        "dovecot", "sudo apt-get install dovecot-imapd (or: bash scripts/setup-tests.sh)"
    )
    try:
        owner = pwd.getpwnam("dovecot")
    except KeyError:
        owner = None
    if owner is None:
        need("dovecot-user", "sudo apt-get install dovecot-imapd (it adds the dovecot user)")
        raise AssertionError("unreachable")
    # Outside pytest's private tmp folders: Dovecot's mail process runs as the dovecot user.
    folder = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
    try:
        folder.chmod(0o755)
        cert = make_cert(folder, "localhost", "DNS:localhost,IP:127.0.0.1")
        home = folder / "home"
        home.mkdir()
        os.chown(home, owner.pw_uid, owner.pw_gid)
        (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        port, starttls_port = free_port(), free_port()
        log = folder / "dovecot.log"
        config = folder / "dovecot.conf"
        config.write_text(
            f"""
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = newsletter-test-{port}
protocols = imap
listen = 127.0.0.1
log_path = {log}
ssl = required
ssl_cert = <{cert.cert}
ssl_key = <{cert.key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = {owner.pw_uid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {starttls_port}
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
        )
        proc = subprocess.Popen(
            [binary, "-c", str(config), "-F"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            _wait_listening(port, proc, log, "dovecot")
            yield Dovecot(port, starttls_port, cert)
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- Postfix that bounces ------------------------------------------------------------

_QUEUE_FOLDERS = {
    "active": ("postfix", None, 0o700),
    "bounce": ("postfix", None, 0o700),
    "corrupt": ("postfix", None, 0o700),
    "defer": ("postfix", None, 0o700),
    "deferred": ("postfix", None, 0o700),
    "flush": ("postfix", None, 0o700),
    "hold": ("postfix", None, 0o700),
    "incoming": ("postfix", None, 0o700),
    "private": ("postfix", None, 0o700),
    "saved": ("postfix", None, 0o700),
    "trace": ("postfix", None, 0o700),
    "maildrop": ("postfix", "postdrop", 0o730),
    "public": ("postfix", "postdrop", 0o710),
}


@dataclass
class Bouncer:
    port: int  # where the newsletter is sent (SMTP, no TLS)
    log: Path


@contextmanager
def postfix_bouncer(*, deliver_to: int, hard: str, soft: str, home: str) -> Iterator[Bouncer]:
    """A Postfix on a free port: mail for ``hard`` is refused for good (5.1.1), for
    ``soft`` turned away for now (4.2.2, tried once, so bounced at once), and the
    bounces (to ``home``, the bounce address's domain) go by SMTP to 127.0.0.1:``deliver_to``."""
    _sbin("postfix", "sudo apt-get install postfix (or: bash scripts/setup-tests.sh)")
    master = Path("/usr/lib/postfix/sbin/master")
    if not master.exists():
        need("postfix-master", "sudo apt-get install postfix (or: bash scripts/setup-tests.sh)")
    # Outside pytest's private tmp folders: Postfix's daemons run as the postfix user.
    folder = Path(tempfile.mkdtemp(prefix="newsletter-postfix-"))
    folder.chmod(0o755)
    try:
        with _postfix(folder, master, deliver_to, hard, soft, home) as bouncer:
            yield bouncer
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _postfix(
    folder: Path, master: Path, deliver_to: int, hard: str, soft: str, home: str
) -> Iterator[Bouncer]:
    conf = folder / "conf"
    queue = folder / "queue"
    data = folder / "data"
    for d in (conf, queue, data):
        d.mkdir(parents=True)
    postfix_user = pwd.getpwnam("postfix")
    os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
    (queue / "pid").mkdir()
    for name, (user, group, mode) in _QUEUE_FOLDERS.items():
        path = queue / name
        path.mkdir()
        gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(user).pw_gid
        os.chown(path, pwd.getpwnam(user).pw_uid, gid)
        path.chmod(mode)
    port = free_port()
    (conf / "transport").write_text(
        f"{hard} error:5.1.1 User unknown: no mailbox here by that name\n"
        f"{soft} retry:4.2.2 Mailbox full, try again later\n"
        f"{home} smtp:[127.0.0.1]:{deliver_to}\n"
    )
    (conf / "main.cf").write_text(
        f"""
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.school.example.org
mydomain = school.example.org
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_reject_unlisted_recipient = no
transport_maps = texthash:{conf}/transport
default_transport = discard
relay_transport = discard
local_transport = discard
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
smtp_tls_security_level = none
smtputf8_enable = no
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = /dev/stdout
biff = no
"""
    )
    master_cf = Path("/etc/postfix/master.cf").read_text()
    lines = []
    for line in master_cf.splitlines():
        fields = line.split()
        if fields and not line.startswith((" ", "\t", "#")) and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"127.0.0.1:{port}"
            fields[4] = "n"  # no chroot: the queue is here, not under /var/spool
            line = " ".join(fields)
        lines.append(line)
    (conf / "master.cf").write_text("\n".join(lines) + "\n")
    log = folder / "postfix.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(master), "-c", str(conf), "-d"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(port, proc, log, "postfix")
        yield Bouncer(port, log)
    finally:
        _stop(proc)
        with suppress(FileNotFoundError):
            (queue / "pid" / "master.pid").unlink()
