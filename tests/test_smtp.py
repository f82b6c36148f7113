"""The SMTP transport against real servers on 127.0.0.1. No mocks.

* aiosmtpd in-process: plain, STARTTLS and implicit TLS with certificates the
  tests make (openssl), AUTH PLAIN and LOGIN, greylisting, byte-for-byte checks.
* Postfix's ``smtp-sink`` as a subprocess, for faults: soft and hard rejects,
  421 and dropped connections, and the rate limit. A missing ``smtp-sink`` is
  a failure under CI=true (``scripts/setup-tests.sh`` installs postfix).

Each server is stopped by the test that started it, by its own handle.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from servers import Cert, Recorder, SlowServer, aiosmtpd, free_port, make_cert, sink

from sender.config import CONFIG_NAME, Config, SmtpConfig, load_config
from sender.message import Envelope, MessageTemplate
from sender.problems import ProblemsError
from sender.recipient import Recipient
from sender.transports import Job, Outcome, TransportError
from sender.transports.eml import EmlOutbox
from sender.transports.smtp import RateLimiter, SmtpTransport, from_config
from sender.variant import Variant

USER = "comms"
PASSWORD = "s3cret-Pässwörd"  # not ASCII: PLAIN and LOGIN carry UTF-8
SENDER = "news@example.org"
FAST = 0.05  # backoff base for tests: 0.05 s, 0.1 s, 0.2 s …


# ---------------------------------------------------------------------------
# Helpers


def config(port: int, **overrides: Any) -> SmtpConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "connections": 1,
        "rate": 0,  # no limit
        "tries": 3,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return SmtpConfig(**settings)


def transport(cfg: SmtpConfig, **kwargs: Any) -> SmtpTransport:
    kwargs.setdefault("password", None)
    kwargs.setdefault("backoff", FAST)
    return SmtpTransport(cfg, local_hostname="tests.example.org", **kwargs)


def job(n: int, data: bytes | None = None, *, to: str | None = None) -> Job:
    recipient = to or f"person{n}@example.net"
    if data is None:
        data = (
            f"From: News <{SENDER}>\r\nTo: <{recipient}>\r\nSubject: Message {n}\r\n"
            f"Message-ID: <{n}@tests.example.org>\r\n\r\nHello number {n}.\r\n"
        ).encode()
    return Job(Envelope(SENDER, recipient, f"<{n}@tests.example.org>"), data, key=n)


@dataclass
class Run:
    """What the callbacks saw during one send_all."""

    started: list[object] = field(default_factory=list)
    done: dict[object, Outcome] = field(default_factory=dict)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_start(self, j: Job) -> bool:
        with self.lock:
            assert j.key not in self.done, "started again after its outcome"
            self.started.append(j.key)
        return True

    def on_done(self, j: Job, outcome: Outcome) -> None:
        with self.lock:
            assert j.key not in self.done, "two outcomes for one job"
            assert j.key in self.started, "an outcome for a job never started"
            self.done[j.key] = outcome

    def attempts(self, key: object) -> int:
        return self.started.count(key)

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.done.values():
            counts[o.state] = counts.get(o.state, 0) + 1
        return counts


def send(t: SmtpTransport, jobs: Iterable[Job], stop: threading.Event | None = None) -> Run:
    run = Run()
    t0 = time.monotonic()
    t.send_all(jobs, on_start=run.on_start, on_done=run.on_done, stop=stop or threading.Event())
    run.seconds = time.monotonic() - t0
    return run


# -- aiosmtpd -----------------------------------------------------------------


def authenticator(
    _server: Any, _session: Any, _envelope: Any, _mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Cert]:
    """A self-signed certificate for 127.0.0.1, and one for another name."""
    folder = tmp_path_factory.mktemp("certs")
    return {
        "good": make_cert(folder, "relay.test", "DNS:localhost,IP:127.0.0.1"),
        "other": make_cert(folder, "mail.example.org", "DNS:mail.example.org"),
    }


# -- smtp-sink ----------------------------------------------------------------


class CuttingProxy:
    """A TCP proxy to a server that cuts connection k after ``cuts[k]`` bytes from the
    client (None: never), in the middle of whatever the client was sending."""

    def __init__(self, target: int, cuts: list[int | None]) -> None:
        self.target = target
        self.cuts = cuts
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.turned_away(client):
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            cut = self.cuts[min(self.connections, len(self.cuts) - 1)]
            self.connections += 1
            self.sockets += [client, server]
            for args in ((client, server, cut), (server, client, None)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def turned_away(self, client: socket.socket) -> bool:  # noqa: ARG002 (for subclasses)
        """Whether to answer this client here instead of passing it on (it is closed)."""
        return False

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: limit - sent])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self.listener.close()
        for s in self.sockets:
            s.close()
        self.thread.join(5)


# ---------------------------------------------------------------------------
# aiosmtpd: what arrives is exactly what was handed over


TRICKY = [
    b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n",
    b".\r\nSubject: a dot first\r\n\r\nbody\r\n",
    b"Subject: no final line break\r\n\r\nlast line",
    b"Subject: 8-bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nZo\xc3\xab\r\n",
]


def test_plain_delivers_the_bytes_unchanged() -> None:
    handler = Recorder()
    with aiosmtpd(handler) as port:
        t = transport(config(port))
        t.check()
        jobs = [job(n, data) for n, data in enumerate(TRICKY)]
        run = send(t, jobs)
    assert run.states() == {"sent": len(TRICKY)}
    assert all(o.code == 250 and "queued" in o.text for o in run.done.values())
    got = handler.by_recipient()
    for j in jobs:
        expected = j.data if j.data.endswith(b"\r\n") else j.data + b"\r\n"
        assert got[j.envelope.recipient] == expected
    assert {m[0] for m in handler.messages} == {SENDER}


def newsletter(n: int) -> tuple[MessageTemplate, list[Recipient]]:
    variant = Variant(
        slug="2025-02-13-blog",
        audiences=frozenset(),
        subject="Steve Kay’s blog, 13 February",
        preheader="Out and about",
        html='<!doctype html>\n<html><body><p>Dear {{ first_name | default("colleagues") }},'
        "</p>\n<p>.A line with a dot first, and some more words to wrap.</p>\n"
        + "<p>Careers fair news for everyone at school this week.</p>\n" * 60
        + "</body></html>\n",
        text='Dear {{ first_name | default("colleagues") }},\n\n.A line with a dot first.\n',
        fields=frozenset({"first_name"}),
        required=frozenset(),
    )
    cfg = Config(
        root=Path("."),
        sender="Riverside News <news@example.org>",
        domain="news.example.org",
        unsubscribe="https://example.org/unsub",
    )
    tmpl = MessageTemplate(variant, cfg, date=datetime(2025, 2, 13, 9, tzinfo=UTC))
    people = [
        Recipient(
            email=f"head{i}@school.example",
            name=f"Zoë Head {i}",
            fields={"email": f"head{i}@school.example", "first_name": f"Zoë{i}"},
            lists=("headteachers",),
        )
        for i in range(n)
    ]
    return tmpl, people


def test_received_messages_are_what_the_eml_outbox_writes(tmp_path: Path) -> None:
    tmpl, people = newsletter(5)
    jobs = [Job(tmpl.envelope(p), tmpl.render(p), key=p.email) for p in people]
    outbox = EmlOutbox(tmp_path / "outbox")
    outbox.send_all(
        jobs, on_start=lambda _: True, on_done=lambda _j, _o: None, stop=threading.Event()
    )
    handler = Recorder()
    with aiosmtpd(handler) as port:
        run = send(transport(config(port, connections=2)), iter(jobs))
    assert run.states() == {"sent": 5}
    got = handler.by_recipient()
    for p in people:
        assert got[p.email] == outbox.path_for(p.email).read_bytes()


# ---------------------------------------------------------------------------
# TLS and AUTH


def test_starttls_with_ca_file_and_login(certs: dict[str, Cert]) -> None:
    handler = Recorder()
    server = certs["good"].server_context()
    lines: list[str] = []
    with aiosmtpd(
        handler, tls_context=server, require_starttls=True, authenticator=authenticator
    ) as port:
        cfg = config(port, security="starttls", ca_file=certs["good"].cert, username=USER)
        t = transport(cfg, password=PASSWORD, log=lines.append)
        t.check()
        data = TRICKY[0]
        run = send(t, [job(1, data)])
    assert run.states() == {"sent": 1}
    assert handler.by_recipient()["person1@example.net"] == data
    assert any("TLS started" in line for line in lines)


def test_starttls_certificate_not_trusted_without_ca_file(certs: dict[str, Cert]) -> None:
    with aiosmtpd(Recorder(), tls_context=certs["good"].server_context()) as port:
        t = transport(config(port, security="starttls"))
        with pytest.raises(TransportError, match=r"do not trust.*\[smtp\] ca_file"):
            t.check()


def test_certificate_for_another_name(certs: dict[str, Cert]) -> None:
    with aiosmtpd(Recorder(), tls_context=certs["other"].server_context()) as port:
        t = transport(config(port, security="starttls", ca_file=certs["other"].cert))
        with pytest.raises(TransportError, match=r"not for the name '127\.0\.0\.1'"):
            t.check()


def test_implicit_tls(certs: dict[str, Cert]) -> None:
    handler = Recorder()
    with aiosmtpd(handler, ssl_context=certs["good"].server_context()) as port:
        untrusted = transport(config(port, security="tls"))
        with pytest.raises(TransportError, match="ca_file"):
            untrusted.check()
        t = transport(config(port, security="tls", ca_file=certs["good"].cert))
        t.check()
        run = send(t, [job(1, TRICKY[1])])
    assert run.states() == {"sent": 1}
    assert handler.by_recipient()["person1@example.net"] == TRICKY[1]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_login_right_and_wrong_password_and_redacted_log(mechanism: str) -> None:
    handler = Recorder()
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    with aiosmtpd(
        handler,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=[other],
    ) as port:
        cfg = config(port, username=USER)
        lines: list[str] = []
        t = transport(cfg, password=PASSWORD, log=lines.append)
        t.check()
        run = send(t, [job(1)])
        assert run.states() == {"sent": 1}

        wrong = transport(cfg, password="not-the-password", log=lines.append)
        with pytest.raises(TransportError, match="password") as caught:
            wrong.check()
        assert "NEWSLETTER_SMTP_PASSWORD" in str(caught.value)
        assert "not-the-password" not in str(caught.value)

    log = "\n".join(lines)
    assert "MAIL FROM:<news@example.org>" in log
    said = [line.split("] ", 1)[1] for line in lines if "] > " in line]
    if mechanism == "PLAIN":
        assert "> AUTH PLAIN ********" in said
    else:  # the name and the password each answer a 334, both redacted
        at = said.index("> AUTH LOGIN")
        assert said[at + 1 : at + 3] == ["> ********", "> ********"]
    secrets = [PASSWORD, "not-the-password"]
    for secret in list(secrets):
        secrets += [
            base64.b64encode(USER.encode()).decode(),  # not secret, but redacted with the rest
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"\0{USER}\0{secret}".encode()).decode(),
            base64.b64encode(f"{USER}\0{secret}".encode()).decode(),
        ]
    for secret in secrets:
        assert secret not in log
    assert "SmtpTransport" in repr(t) and PASSWORD not in repr(t)


def test_username_without_password_fails_before_connecting() -> None:
    nobody = free_port()  # nothing listens here: a connection attempt would say so
    for password in (None, ""):
        t = transport(config(nobody, username=USER), password=password)
        with pytest.raises(TransportError, match="NEWSLETTER_SMTP_PASSWORD"):
            t.check()


# ---------------------------------------------------------------------------
# Preflight failures, with messages a comms officer can act on


def test_refused_connection_names_host_and_port_and_sends_nothing() -> None:
    port = free_port()
    t = transport(config(port))
    with pytest.raises(TransportError) as caught:
        t.check()
    assert "127.0.0.1" in str(caught.value) and str(port) in str(caught.value)
    assert "refused" in str(caught.value)

    run = Run()
    with pytest.raises(TransportError, match="could not connect again"):
        t.send_all(
            (job(n) for n in range(5)),
            on_start=run.on_start,
            on_done=run.on_done,
            stop=threading.Event(),
        )
    assert run.started == [] and run.done == {}


def test_unknown_host() -> None:
    t = transport(config(25, host="no-such-host.invalid", timeout=3.0))
    with pytest.raises(
        TransportError, match=r"cannot find the mail server 'no-such-host\.invalid'"
    ):
        t.check()


def test_server_without_starttls(tmp_path: Path) -> None:
    with sink(tmp_path) as s:
        t = transport(config(s.port, security="starttls"))
        with pytest.raises(TransportError, match="does not offer STARTTLS"):
            t.check()


def test_username_set_but_server_offers_no_login(tmp_path: Path) -> None:
    with sink(tmp_path, "-a") as s:
        t = transport(config(s.port, username=USER), password=PASSWORD)
        with pytest.raises(TransportError, match=r"does not offer a login \(AUTH\)"):
            t.check()


def test_tls_against_a_plain_server_suggests_starttls(tmp_path: Path) -> None:
    with sink(tmp_path) as s:
        t = transport(config(s.port, security="tls"))
        with pytest.raises(TransportError, match='security = "starttls"'):
            t.check()


def test_no_greeting_times_out(tmp_path: Path) -> None:
    with sink(tmp_path, "-W", "CONNECT:3") as s:
        t = transport(config(s.port, timeout=0.3))
        with pytest.raises(TransportError, match=r"no answer .* within 0\.3 s"):
            t.check()


# ---------------------------------------------------------------------------
# Rejects and retries


def test_soft_reject_is_deferred_after_exactly_tries_attempts(tmp_path: Path) -> None:
    with sink(tmp_path, "-r", "RCPT") as s:
        run = send(transport(config(s.port, tries=3, connections=2)), [job(n) for n in range(4)])
    assert run.states() == {"deferred": 4}
    for n in range(4):
        assert run.attempts(n) == 3
        assert run.done[n].code == 450
        assert "4.3.0 Error: command failed" in run.done[n].text


def test_greylisted_recipients_are_sent_on_the_next_try() -> None:
    grey = {f"person{n}@example.net" for n in (1, 4)}
    handler = Recorder(greylist=grey)
    with aiosmtpd(handler) as port:
        run = send(transport(config(port, tries=3)), [job(n) for n in range(6)])
    assert run.states() == {"sent": 6}
    assert [run.attempts(n) for n in range(6)] == [1, 2, 1, 1, 2, 1]
    assert len(handler.messages) == 6


def test_hard_reject_fails_once_with_code_and_text_and_keeps_the_connection(
    tmp_path: Path,
) -> None:
    reply = "550 5.1.1 <person>: Recipient address rejected: User unknown"
    with sink(tmp_path, "-f", "RCPT", "-B", reply) as s:
        run = send(transport(config(s.port, tries=3)), [job(n) for n in range(5)])
    assert run.states() == {"failed": 5}
    for n in range(5):
        assert run.attempts(n) == 1
        assert run.done[n].code == 550
        assert run.done[n].text == "5.1.1 <person>: Recipient address rejected: User unknown"
    assert s.counters()["sess"] == 1  # RSET after each reject, one connection throughout


def test_reject_after_the_data(tmp_path: Path) -> None:
    with sink(tmp_path, "-f", ".") as s:
        run = send(transport(config(s.port)), [job(n) for n in range(3)])
    assert run.states() == {"failed": 3}
    assert {o.code for o in run.done.values()} == {500}
    assert [run.attempts(n) for n in range(3)] == [1, 1, 1]


# ---------------------------------------------------------------------------
# Dropped connections


def test_421_at_data_reconnects_then_defers(tmp_path: Path) -> None:
    with sink(tmp_path, "-Q", "DATA") as s:
        run = send(transport(config(s.port, tries=2)), [job(n) for n in range(3)])
    assert run.states() == {"deferred": 3}
    for n in range(3):
        assert run.attempts(n) == 2
        assert run.done[n].code == 421
        assert "connection to the mail server dropped" in run.done[n].text
    assert s.counters()["sess"] >= 6  # a new connection for every attempt


def test_dropped_connections_reconnect_and_never_send_a_message_twice(tmp_path: Path) -> None:
    body = b"Subject: long\r\n\r\n" + b"A line of the newsletter, long enough.\r\n" * 100
    n = 30
    # Each connection starts with "EHLO tests.example.org\r\n" (24 bytes), then
    # per message 67 or 68 bytes of commands and 4,020 of data. Cuts at 30 and 40
    # fall in a MAIL FROM, before any data: that message is tried again. Cuts at
    # 6,000 and 9,000 fall in the data of the second and third messages, after
    # the client has written it all: for all it can tell the server took the
    # message and went away, so it is unknown and not sent again.
    with sink(tmp_path) as s:
        proxy = CuttingProxy(s.port, cuts=[30, 6000, 40, 9000, None])
        try:
            run = send(
                transport(config(proxy.port, tries=4, connections=2)),
                [job(i, body) for i in range(n)],
            )
        finally:
            proxy.close()
    assert run.states() == {"sent": n - 2, "unknown": 2}
    assert proxy.connections >= 5
    assert len(run.started) == n + 2  # the two cut before their data were tried again
    for key, outcome in run.done.items():
        if outcome.state == "unknown":
            assert run.attempts(key) == 1
            assert "may have arrived" in outcome.text
    assert s.counters()["mesg"] == n - 2  # smtp-sink counts only whole messages


def test_server_silent_mid_session_times_out_and_defers(tmp_path: Path) -> None:
    with sink(tmp_path, "-W", "RCPT:3") as s:
        run = send(transport(config(s.port, tries=2, timeout=0.3)), [job(1)])
    assert run.done[1].state == "deferred"
    assert run.attempts(1) == 2
    assert "timed out" in run.done[1].text


# ---------------------------------------------------------------------------
# Slow servers: the answer to a whole message has data_timeout; every other
# reply, and opening a connection, a deadline of timeout


def test_a_slow_answer_to_the_message_is_waited_for_and_it_goes_once() -> None:
    # Before data_timeout: timed out at 0.5 s and sent again, three copies queued.
    with SlowServer(answer_after=1.5) as server:
        run = send(transport(config(server.port, timeout=0.5, data_timeout=3.0)), [job(1)])
    assert run.done[1] == Outcome("sent", 250, "2.0.0 Ok: queued")
    assert run.attempts(1) == 1
    assert len(server.messages) == 1
    assert 1.5 <= run.seconds < 3.0


def test_no_answer_to_the_message_is_unknown_and_never_sent_again() -> None:
    with SlowServer(answer_after=None) as server:
        cfg = config(server.port, timeout=0.5, data_timeout=1.0, tries=3)
        run = send(transport(cfg), [job(1), job(2)])
        connections = server.connections
    for n in (1, 2):
        outcome = run.done[n]
        assert (outcome.state, outcome.code) == ("unknown", None)
        assert outcome.text.startswith(
            "the mail server took the message but gave no answer within 1 s"
        )
        assert "may have arrived, so it was not sent again" in outcome.text
        assert run.attempts(n) == 1
    assert len(server.messages) == 2  # one copy each
    assert connections == 2  # the silent connection is not used again
    assert 2.0 <= run.seconds < 4.0


def test_a_server_hanging_up_after_the_message_is_unknown_not_retried() -> None:
    with SlowServer(hang_up=True) as server:
        run = send(transport(config(server.port, tries=3)), [job(1)])
    outcome = run.done[1]
    assert outcome.state == "unknown"
    assert "closed the connection before answering" in outcome.text
    assert run.attempts(1) == 1
    assert len(server.messages) == 1


def test_data_timeout_is_its_own_setting_and_600_s_by_default(tmp_path: Path) -> None:
    assert (SmtpConfig().timeout, SmtpConfig().data_timeout) == (30.0, 600.0)
    assert SmtpConfig().allow_plain_auth is False
    (tmp_path / CONFIG_NAME).write_text(
        "[smtp]\ntimeout = 20\ndata_timeout = 900\nallow_plain_auth = true\n",
        encoding="utf-8",
    )
    smtp = load_config(tmp_path).smtp
    assert (smtp.timeout, smtp.data_timeout, smtp.allow_plain_auth) == (20.0, 900.0, True)
    (tmp_path / CONFIG_NAME).write_text(
        '[smtp]\ndata_timeout = 0\nallow_plain_auth = "yes"\n', encoding="utf-8"
    )
    with pytest.raises(ProblemsError) as caught:
        load_config(tmp_path)
    said = str(caught.value)
    assert "[smtp] data_timeout" in said and "more than 0" in said
    assert "[smtp] allow_plain_auth" in said and "true or false" in said


def test_a_trickling_greeting_fails_the_preflight_within_the_timeout() -> None:
    # Before the deadline: a 220- line every 0.2 s kept check() waiting for ever.
    with SlowServer(trickle=0.2) as server:
        t = transport(config(server.port, timeout=1.0))
        t0 = time.monotonic()
        with pytest.raises(TransportError) as caught:
            t.check()
        seconds = time.monotonic() - t0
    said = str(caught.value)
    assert said.startswith(
        f"the mail server 127.0.0.1:{server.port} is not answering properly: it began a "
        "reply ('220-slow.test still working on it' …) but did not finish it within 1 s."
    )
    assert "Check [smtp] host and port" in said
    assert 0.9 <= seconds < 2.0


def test_a_trickling_reply_to_a_command_is_cut_off_and_tried_again() -> None:
    with SlowServer(trickle=0.2, trickle_at="MAIL") as server:
        t = transport(config(server.port, timeout=1.0, tries=2))
        t.check()
        run = send(t, [job(1)])
    outcome = run.done[1]
    assert outcome.state == "deferred" and "timed out" in outcome.text
    assert run.attempts(1) == 2
    assert server.messages == []
    assert 2.0 <= run.seconds < 4.0


# ---------------------------------------------------------------------------
# A password in clear only to this computer, or when allowed


@pytest.mark.parametrize("host", ["mail.riverside.example.org", "192.0.2.2", "::2", "127.ex"])
def test_login_without_encryption_is_refused_before_connecting(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", PASSWORD)
    cfg = config(free_port(), host=host, security="none", username=USER)
    for attempt in (lambda: from_config(cfg), transport(cfg, password=PASSWORD).check):
        with pytest.raises(TransportError) as caught:
            attempt()
        said = str(caught.value)
        assert f"the password would cross the network to {host} unencrypted" in said
        assert 'Use security = "starttls" (port 587) or "tls" (port 465)' in said
        assert "allow_plain_auth = true" in said


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "localhost", "LocalHost.", "::1"])
def test_login_without_encryption_to_this_computer_is_allowed(host: str) -> None:
    t = transport(config(free_port(), host=host, username=USER), password=PASSWORD)
    with pytest.raises(TransportError) as caught:  # nothing listens: it tried to connect
        t.check()
    assert "unencrypted" not in str(caught.value)


def test_allow_plain_auth_lets_a_login_go_unencrypted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", PASSWORD)
    cfg = config(25, host="no-such-host.invalid", username=USER, allow_plain_auth=True)
    with pytest.raises(TransportError, match=r"cannot find the mail server 'no-such-host"):
        from_config(cfg).check()


# ---------------------------------------------------------------------------
# Someone else's: on_start answering False


def test_a_job_claimed_elsewhere_is_skipped_without_an_outcome(tmp_path: Path) -> None:
    claimed = {1, 3}
    run = Run()

    def on_start(j: Job) -> bool:
        run.on_start(j)
        return j.key not in claimed

    handler = Recorder()
    with aiosmtpd(handler) as port:
        t = transport(config(port, connections=2))
        t.send_all(
            [job(n) for n in range(5)],
            on_start=on_start,
            on_done=run.on_done,
            stop=threading.Event(),
        )
    assert sorted(run.done, key=str) == [0, 2, 4]
    assert run.states() == {"sent": 3}
    assert sorted(handler.by_recipient()) == [f"person{n}@example.net" for n in (0, 2, 4)]

    outbox = EmlOutbox(tmp_path / "outbox")
    done: list[object] = []
    outbox.send_all(
        [job(n) for n in range(5)],
        on_start=lambda j: j.key not in claimed,
        on_done=lambda j, _o: done.append(j.key),
        stop=threading.Event(),
    )
    assert done == [0, 2, 4]
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [
        f"person{n}@example.net.eml" for n in (0, 2, 4)
    ]


# ---------------------------------------------------------------------------
# Pool, laziness, stopping, errors


def test_jobs_are_read_lazily_and_all_connections_share_the_work(tmp_path: Path) -> None:
    n = 300
    read = 0
    most_ahead = 0
    run = Run()

    def jobs() -> Iterator[Job]:
        nonlocal read, most_ahead
        for i in range(n):
            read += 1
            most_ahead = max(most_ahead, read - len(run.done))
            yield job(i)

    with sink(tmp_path) as s:
        t = transport(config(s.port, connections=3))
        t.send_all(jobs(), on_start=run.on_start, on_done=run.on_done, stop=threading.Event())
    assert run.states() == {"sent": n}
    assert most_ahead <= 4 * 3 + 3 + 1  # the queue, one per connection, one being made
    assert s.counters()["sess"] == 3
    assert s.counters()["mesg"] == n


def test_stop_finishes_messages_in_flight_and_returns(tmp_path: Path) -> None:
    stop = threading.Event()
    run = Run()
    read = 0

    def jobs() -> Iterator[Job]:
        nonlocal read
        for i in range(10_000):
            read += 1
            yield job(i)

    def on_done(j: Job, outcome: Outcome) -> None:
        run.on_done(j, outcome)
        if len(run.done) == 20:
            stop.set()

    with sink(tmp_path) as s:
        t = transport(config(s.port, connections=3, rate=200))
        t.send_all(jobs(), on_start=run.on_start, on_done=on_done, stop=stop)
    assert set(run.started) == set(run.done)  # everything started has its outcome
    assert 20 <= len(run.done) < 40
    assert read < 60
    assert run.states() == {"sent": len(run.done)}


def test_stop_while_waiting_to_try_again_defers_at_once(tmp_path: Path) -> None:
    stop = threading.Event()
    run = Run()

    def on_start(j: Job) -> bool:
        run.on_start(j)
        if len(run.started) == 3:
            stop.set()
        return True

    with sink(tmp_path, "-r", "RCPT") as s:
        t = SmtpTransport(config(s.port, tries=5), password=None, backoff=30.0)
        t0 = time.monotonic()
        t.send_all((job(n) for n in range(100)), on_start=on_start, on_done=run.on_done, stop=stop)
    assert time.monotonic() - t0 < 5  # not the 30 s backoff
    assert set(run.done) == set(run.started) and len(run.done) == 3
    assert all(o.state == "deferred" and o.code == 450 for o in run.done.values())


def test_server_gone_for_good_stops_the_run_with_every_outcome_given(tmp_path: Path) -> None:
    run = Run()
    with sink(tmp_path, "-M", "10") as s:  # smtp-sink exits after 10 messages
        t = transport(config(s.port, connections=2, tries=2))
        with pytest.raises(TransportError, match=r"could not connect again.*carry on"):
            t.send_all(
                (job(n) for n in range(200)),
                on_start=run.on_start,
                on_done=run.on_done,
                stop=threading.Event(),
            )
    assert set(run.started) == set(run.done)
    states = run.states()
    assert states["sent"] >= 9  # the 10th may have gone down with the server, unanswered
    # In flight when it went: unknown once the whole message was written, else deferred.
    unfinished = states.get("deferred", 0) + states.get("unknown", 0)
    assert unfinished >= 1 and states.get("unknown", 0) <= 2 and len(run.done) < 200
    for o in run.done.values():
        assert o.state == "sent" or ("dropped" if o.state == "deferred" else "may have") in o.text


def test_a_failing_callback_is_raised_after_the_others_finish(tmp_path: Path) -> None:
    run = Run()

    def on_done(j: Job, outcome: Outcome) -> None:
        run.on_done(j, outcome)
        if j.key == 5:
            raise RuntimeError("the ledger is full")

    with sink(tmp_path) as s:
        t = transport(config(s.port, connections=2))
        with pytest.raises(RuntimeError, match="the ledger is full"):
            t.send_all(
                (job(n) for n in range(1000)),
                on_start=run.on_start,
                on_done=on_done,
                stop=threading.Event(),
            )
    assert set(run.started) == set(run.done)
    assert len(run.done) < 100


# ---------------------------------------------------------------------------
# Rate limit


@pytest.mark.slow  # 100 messages at 20 a second: 5 s by design
def test_rate_limit_spaces_the_messages(tmp_path: Path) -> None:
    with sink(tmp_path) as s:
        run = send(transport(config(s.port, rate=20, connections=4)), [job(n) for n in range(100)])
    assert run.states() == {"sent": 100}
    # The bound: rate = 20 spreads 100 messages over at least 4.5 s
    # (99 gaps of 50 ms), however many connections share the work.
    assert run.seconds >= 4.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def take(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    """When each of n messages goes, each waiting its turn as a worker would."""
    times = []
    for _ in range(n):
        clock.now += limiter.reserve()
        times.append(round(clock.now - 1000.0, 6))
    return times


def test_bucket_spaces_evenly_without_bursts_after_a_pause() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock)
    assert take(limiter, clock, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    clock.now += 10.0  # idle: no saved-up burst
    assert take(limiter, clock, 3) == [11.0, 11.25, 11.5]


def test_per_minute_cap_is_a_sliding_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, per_minute=30, clock=clock)
    times = take(limiter, clock, 65)
    assert times[:30] == [round(i * 0.1, 6) for i in range(30)]
    assert times[30] == 60.0  # the 31st waits until the first is a minute old
    assert times[31] == 60.1
    for i in range(len(times) - 30):
        assert times[i + 30] - times[i] >= 60.0 - 1e-9  # never 31 in any minute


def test_per_hour_cap_and_reservations_from_several_workers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, per_minute=None, per_hour=3, clock=clock)
    # Four workers ask at once: each is given its own slot, in order.
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, 3600.0]
    assert RateLimiter(0).unlimited and RateLimiter(float("inf")).unlimited
    assert RateLimiter(None).reserve() == 0.0


def test_throttling_halves_the_rate_and_recovers_it_slowly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(8.0, clock=clock)
    assert limiter.slow_down() == 4.0 and limiter.slow_down() == 2.0
    assert take(limiter, clock, 3) == [0.0, 0.5, 1.0]
    limiter.recover()  # additive: 8 / 120 s of recovery, over the 0.5 s one message takes
    assert limiter.rate == pytest.approx(2.0 + 8.0 / 120.0 / 2.0)
    for _ in range(10_000):
        limiter.recover()
    assert limiter.rate == 8.0 and limiter.throttles == 2
    for _ in range(20):
        limiter.slow_down()
    assert limiter.rate == pytest.approx(1 / 60)  # never slower than one a minute
    unlimited = RateLimiter(None, clock=clock)
    for _ in range(10):  # ten messages a second, as they went
        clock.now += 0.1
        unlimited.reserve()
    assert unlimited.slow_down() == pytest.approx(5.0)
    for _ in range(10_000):
        unlimited.recover()
    assert unlimited.unlimited and unlimited.rate is None


class Throttling(Recorder):
    """Exchange Online under load: the first RCPTs get 432 4.3.2, some DATAs 451 4.7.500."""

    def __init__(self, rcpt_refusals: int, data_refusals: int) -> None:
        super().__init__()
        self.rcpt_refusals = rcpt_refusals
        self.data_refusals = data_refusals
        self.refused = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_refusals > 0:
            self.rcpt_refusals -= 1
            self.refused += 1
            return "432 4.3.2 STOREDRV.ClientSubmit; Concurrent connections limit exceeded"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_refusals > 0:
            self.data_refusals -= 1
            self.refused += 1
            return "451 4.7.500 Server busy. Please try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.slow
def test_a_throttling_server_slows_the_pool_and_everyone_arrives_once() -> None:
    handler = Throttling(rcpt_refusals=2, data_refusals=1)
    with aiosmtpd(handler) as port:
        t = transport(config(port, connections=2, rate=40.0, tries=2))
        run = send(t, [job(n) for n in range(40)])
    assert run.states() == {"sent": 40}, run.done
    received = sorted(rcpt[0] for _, rcpt, _ in handler.messages)
    assert received == sorted(f"person{n}@example.net" for n in range(40))  # once each
    assert handler.refused == 3 and t.throttled == 3
    rates = list(t.limiter.history)
    lowest = min(rates)
    assert lowest <= 40.0 / 2**3  # halved at each throttling reply (some at once)
    assert rates[-1] > lowest  # and climbing back as messages went through
    assert all(o.relay == f"127.0.0.1:{port}" for o in run.done.values())


class BusyAtFirst(CuttingProxy):
    """A proxy to a real server that turns the first ``busy`` connections away with
    Exchange Online's greeting for too many connections at once."""

    def __init__(self, target: int, busy: int) -> None:
        self.busy = busy
        super().__init__(target, [None])

    def turned_away(self, client: socket.socket) -> bool:
        if self.busy <= 0:
            return False
        self.busy -= 1
        with suppress(OSError):
            client.sendall(
                b"421 4.3.2 The maximum number of concurrent connections has exceeded "
                b"a limit, closing transmission channel\r\n"
            )
        client.close()
        return True


def test_connections_turned_away_as_too_many_slow_down_and_do_not_count_as_failures() -> None:
    handler = Recorder()
    with aiosmtpd(handler) as port:
        proxy = BusyAtFirst(port, busy=4)  # more than tries: it would be 'lost' otherwise
        try:
            t = transport(config(proxy.port, connections=1, rate=50.0, tries=2))
            run = send(t, [job(n) for n in range(5)])
        finally:
            proxy.close()
    assert run.states() == {"sent": 5}
    assert len(handler.messages) == 5 and t.throttled == 4
    assert min(t.limiter.history) <= 50.0 / 2**4
