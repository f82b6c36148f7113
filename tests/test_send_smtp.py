"""`newsletter send --transport smtp` end to end against real servers on 127.0.0.1:
faults seen in `status`, deferred mail retried by re-running, and a send killed
with SIGKILL that resumes with nobody lost."""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import Cli
from servers import Recorder, aiosmtpd, free_port, sink

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"
_MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.M | re.I)


pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]


def use_smtp(workspace: Path, port: int, **settings: Any) -> None:
    """Point the workspace's [smtp] at a local test server, no TLS, no login."""
    toml = (workspace / "newsletter.toml").read_text(encoding="utf-8")
    toml = toml[: toml.index("\n[smtp]\n") + 1]
    values = {"host": "127.0.0.1", "port": port, "security": "none", "connections": 2, "rate": 0}
    values.update(settings)
    lines = [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()]
    text = toml + "[smtp]\n" + "\n".join(lines).replace("'", '"') + "\n"
    (workspace / "newsletter.toml").write_text(text, encoding="utf-8")


def people(workspace: Path, n: int, name: str = "staff") -> list[str]:
    emails = [f"person{i:04d}@school{i % 13}.example.org" for i in range(n)]
    rows = [f"{e},Person {i}" for i, e in enumerate(emails)]
    (workspace / "recipients" / f"{name}.csv").write_text(
        "email,first_name\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return emails


def send(cli: Cli, *args: str) -> Result:
    return cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes", *args)


def ledger(workspace: Path) -> dict[str, tuple[str, str]]:
    db = sqlite3.connect(workspace / "ledger.sqlite")
    try:
        return {
            e: (s, m) for e, s, m in db.execute("SELECT email, state, message_id FROM deliveries")
        }
    finally:
        db.close()


def test_smtp_send_delivers_everyone_and_records_it(cli: Cli, workspace: Path) -> None:
    emails = people(workspace, 12)
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        result = send(cli)
    assert result.exit_code == 0, result.output
    assert "the mail server 127.0.0.1" in result.output
    assert sorted(rcpt[0] for _, rcpt, _ in handler.messages) == sorted(emails)
    rows = ledger(workspace)
    assert {s for s, _ in rows.values()} == {"sent"}
    received = {_MESSAGE_ID.search(m).group(1).decode() for _, _, m in handler.messages}  # type: ignore[union-attr]
    assert received == {m for _, m in rows.values()}
    assert (workspace / "archive" / "index.html").is_file()


def test_soft_rejects_are_deferred_then_sent_by_running_again(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    people(workspace, 3)
    with sink(tmp_path, "-r", "RCPT") as s:  # every RCPT: 450
        use_smtp(workspace, s.port, tries=2)
        first = send(cli)
        port = s.port
    assert first.exit_code == 1
    assert "3 emails were not delivered" in first.output
    status = cli("status", BLOG)
    assert status.output.count("deferred after 2 attempts: 450") == 3, status.output
    with sink(tmp_path) as s:  # the server takes mail again
        use_smtp(workspace, s.port)
        second = send(cli)
    assert port
    assert second.exit_code == 0, second.output
    assert "Done: 3 emails sent" in second.output
    assert {s for s, _ in ledger(workspace).values()} == {"sent"}


def test_hard_rejects_fail_with_code_and_text_in_status_and_are_not_retried(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    people(workspace, 3)
    with sink(tmp_path, "-f", "RCPT", "-B", "550 5.1.1 No such mailbox here") as s:
        use_smtp(workspace, s.port, tries=3)
        first = send(cli)
        assert first.exit_code == 1
        status = cli("status", BLOG)
        assert status.output.count("failed after 1 attempt: 550 5.1.1 No such mailbox here") == 3
        failed = cli("status", BLOG, "--failed")
        assert sorted(failed.output.split()) == sorted(ledger(workspace))
        again = send(cli)
        assert "3 failed before and are skipped" in again.output
        assert "Everyone on these lists already has this issue" not in again.output
        assert "Use --retry-failed to try those again" in again.output
        retried = send(cli, "--retry-failed")
        assert retried.exit_code == 1
    status = cli("status", BLOG)
    assert status.output.count("failed after 2 attempts") == 3, status.output


def test_bad_server_settings_stop_before_anyone(cli: Cli, workspace: Path) -> None:
    people(workspace, 3)
    use_smtp(workspace, free_port())  # nothing listens there
    result = send(cli)
    assert result.exit_code == 1
    assert "127.0.0.1" in result.output and "Nothing was sent" in result.output
    assert "Traceback" not in result.output
    assert not (workspace / "ledger.sqlite").exists() or not any(
        s == "sent" for s, _ in ledger(workspace).values()
    )


def test_missing_password_stops_before_anyone(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people(workspace, 3)
    monkeypatch.delenv("NEWSLETTER_SMTP_PASSWORD", raising=False)
    use_smtp(workspace, free_port(), username="comms@example.org")
    result = send(cli)
    assert result.exit_code == 1
    assert "NEWSLETTER_SMTP_PASSWORD" in result.output
    assert not (workspace / "ledger.sqlite").exists()


class Counter(Recorder):
    """Counts Message-IDs as they arrive; a real server, not a fake."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        found = _MESSAGE_ID.search(envelope.content)
        with self.lock:
            self.ids.append(found.group(1).decode() if found else "?")
        return "250 2.0.0 Ok: queued"


CONNECTIONS = 2


@pytest.mark.slow
def test_killed_mid_send_resumes_with_nobody_lost(workspace: Path) -> None:
    """A real subprocess sending 2,000 messages is killed with SIGKILL at a
    random moment; running the same command again delivers to everyone, with
    at most one duplicate per connection, and the ledger matches the server."""
    n = 2000
    emails = people(workspace, n)
    counter = Counter()
    argv = [sys.executable, "-m", "sender", "-w", str(workspace), "send", BLOG]
    argv += ["--list", "staff", "--transport", "smtp", "--yes"]
    env = {**os.environ, "NO_COLOR": "1", "SOURCE_DATE_EPOCH": "1739404800"}
    kill_after = random.randint(100, n - 300)
    with aiosmtpd(counter) as port:
        use_smtp(workspace, port, connections=CONNECTIONS)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while len(counter.ids) < kill_after and proc.poll() is None:
                assert time.monotonic() < deadline, "the send made no progress"
                time.sleep(0.005)
            proc.kill()  # SIGKILL: no chance to tidy up
        finally:
            proc.wait(30)
        assert proc.returncode == -9, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.2)  # let the server finish what was in its hands
        before_rerun = list(counter.ids)
        after_kill = ledger(workspace)
        sent = {m for s, m in after_kill.values() if s == "sent"}
        unknown = {m for s, m in after_kill.values() if s == "sending"}
        # Everything the ledger calls sent reached the server; what reached it
        # but is not called sent is at most the in-flight message of each connection.
        assert sent <= set(before_rerun)
        assert set(before_rerun) - sent <= unknown
        assert len(unknown) <= CONNECTIONS
        assert 0 < len(sent) < n

        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        if unknown:
            assert "were being sent when an earlier run stopped" in again.stdout
    ids = counter.ids
    final = ledger(workspace)
    lost = {m for _, m in final.values()} - set(ids)
    # Shown with -s, before the checks, so a failing run says what it found too.
    print(
        f"crash: killed after {len(before_rerun)} received, ledger said {len(sent)} sent and "
        f"{len(unknown)} unknown; after resume: lost {len(lost)}, "
        f"duplicates {len(ids) - len(set(ids))} (at most {CONNECTIONS})"
    )
    assert set(final) == set(emails)
    assert {s for s, _ in final.values()} == {"sent"}
    # Every recipient got at least one message; duplicates at most one per connection.
    assert set(ids) == {m for _, m in final.values()}
    assert len(ids) - len(set(ids)) <= CONNECTIONS
