"""A second relay ([[smtp]]): read from newsletter.toml, the next used when the first
refuses connections (at the preflight or during the send), and the ledger's record of
which relay took each message. Real aiosmtpd servers on 127.0.0.1, real files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import Cli
from servers import Recorder, aiosmtpd, free_port
from test_send_smtp import BLOG, people

from sender.config import load_config
from sender.problems import ProblemsError

pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]


@pytest.fixture(autouse=True)
def _token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Private unsubscribe links need a secret, where the workspace asks for them."""
    monkeypatch.setenv("NEWSLETTER_TOKEN_SECRET", "relay-tests-0123456789abcdef")


def use_relays(workspace: Path, *ports: int, **settings: Any) -> None:
    """[[smtp]] tables for local test servers, in order (no TLS, no login)."""
    toml = (workspace / "newsletter.toml").read_text(encoding="utf-8")
    toml = toml[: toml.index("\n[smtp]\n") + 1]
    for port in ports:
        values = {"host": "127.0.0.1", "port": port, "security": "none", "connections": 2}
        values.update({"rate": 0, **settings})
        lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()]
        toml += "\n[[smtp]]\n" + "\n".join(lines) + "\n"
    (workspace / "newsletter.toml").write_text(toml, encoding="utf-8")


def relays_in_ledger(workspace: Path, state: str = "sent") -> dict[str, str]:
    db = sqlite3.connect(workspace / "ledger.sqlite")
    try:
        rows = db.execute(
            "SELECT email, relay FROM deliveries WHERE state = ?", (state,)
        ).fetchall()
    finally:
        db.close()
    return dict(rows)


def test_smtp_tables_are_read_in_order_and_one_smtp_table_stays_as_it_was(
    workspace: Path,
) -> None:
    use_relays(workspace, 2525, 2526, per_day=100)
    config = load_config(workspace)
    assert [r.port for r in config.relays] == [2525, 2526]
    assert config.smtp is config.relays[0] and config.smtp.per_day == 100
    assert config.relays[1].account == "127.0.0.1:2526"
    toml = workspace / "newsletter.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("port = 2526", 'port = "x"'))
    with pytest.raises(ProblemsError, match=r"\[smtp\] port must be a number"):
        load_config(workspace)
    shipped = load_config(Path(__file__).resolve().parent.parent)
    assert shipped.relays == (shipped.smtp,) and shipped.smtp_relays == ()


def test_the_first_relay_refusing_sends_everything_through_the_second(
    cli: Cli, workspace: Path
) -> None:
    emails = people(workspace, 9)
    handler = Recorder()
    refusing = free_port()  # nothing listens: connections refused
    with aiosmtpd(handler) as port:
        use_relays(workspace, refusing, port)
        result = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
    assert result.exit_code == 0, result.output
    assert f"127.0.0.1:{refusing}" in result.output  # the summary names both
    assert sorted(rcpt[0] for _, rcpt, _ in handler.messages) == sorted(emails)
    assert set(relays_in_ledger(workspace).values()) == {f"127.0.0.1:{port}"}


def test_no_relay_working_says_why_for_each_and_sends_nothing(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people(workspace, 3)
    monkeypatch.delenv("NEWSLETTER_SMTP_PASSWORD", raising=False)
    first, second = free_port(), free_port()
    use_relays(workspace, first, second)
    toml = workspace / "newsletter.toml"
    text = toml.read_text(encoding="utf-8")
    at = text.rindex("[[smtp]]")
    toml.write_text(text[:at] + text[at:] + 'username = "news@example.org"\n', encoding="utf-8")
    result = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "Nothing was sent" in out
    assert f"relay 1, 127.0.0.1:{first}: the mail server 127.0.0.1 refused" in out
    assert "relay 2, news@example.org at" in out and "NEWSLETTER_SMTP_PASSWORD" in out


class StopsAfter(Recorder):
    """Takes ``n`` messages, then its server goes away (connections refused from then on)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.controller: Controller | None = None
        self.stopping: threading.Thread | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if len(self.messages) >= self.n:
            return "421 4.3.0 Shutting down"
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.n and self.controller is not None:
            # Not from the server's own loop: stop() waits for it.
            self.stopping = threading.Thread(target=self.controller.stop, daemon=True)
            self.stopping.start()
        return answer


@pytest.mark.slow
def test_a_relay_lost_during_the_send_hands_over_to_the_next(cli: Cli, workspace: Path) -> None:
    emails = people(workspace, 30)
    first = StopsAfter(10)
    first_port = free_port()
    controller = Controller(first, hostname="127.0.0.1", port=first_port, decode_data=False)
    first.controller = controller
    controller.start()
    second = Recorder()
    try:
        with aiosmtpd(second) as second_port:
            use_relays(workspace, first_port, second_port, tries=2)
            result = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
    finally:
        if first.stopping is not None:
            first.stopping.join(10)
        else:
            controller.stop()
    got = [rcpt[0] for _, rcpt, _ in first.messages] + [rcpt[0] for _, rcpt, _ in second.messages]
    assert len(first.messages) == 10 and len(second.messages) >= 1
    # A message whose data the first server had taken when it went away has no answer:
    # 'unknown', never sent again by itself (it may have arrived), at most one per
    # connection. Everyone else once, by one relay or the other.
    unknown = sorted(relays_in_ledger(workspace, "unknown"))
    assert len(unknown) <= 2, result.output  # the first relay's two connections
    assert sorted(got + unknown) == sorted(emails), result.output
    assert result.exit_code in (0, 1), result.output  # a message caught mid-way may be deferred
    recorded = relays_in_ledger(workspace)
    assert {e for e, r in recorded.items() if r == f"127.0.0.1:{first_port}"} == {
        rcpt[0].lower() for _, rcpt, _ in first.messages
    }
    assert {e for e, r in recorded.items() if r == f"127.0.0.1:{second_port}"} == {
        rcpt[0].lower() for _, rcpt, _ in second.messages
    }
