"""Several senders of one send, through a real PostgreSQL ledger: ``send --workers N``
(worker processes on this machine), ``newsletter worker`` (joining from another
workspace on the same database, as another computer would), a worker killed with
SIGKILL mid-send, the relay's pace and daily quota shared by all, and what
``status`` shows of a send's workers. Real processes, a recording SMTP server on
127.0.0.1 that each test starts and stops, and each process stopped by its handle.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pg import Store
from servers import Recorder, aiosmtpd
from test_nobody_twice import (
    ENV,
    SlowRecorder,
    people,
    received,
    run,
    subprocess_argv,
    use_smtp,
    write_issue,
)

pytestmark = pytest.mark.usefixtures("fixed_date")

CONNECTIONS = 2  # each worker's


def with_ledger(workspace: Path, url: str) -> None:
    config = workspace / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    line = '\nledger = "ledger.sqlite"\n'
    if line in text:
        config.write_text(text.replace(line, f'\nledger = "{url}"\n', 1), encoding="utf-8")
    assert f'ledger = "{url}"' in config.read_text(encoding="utf-8")


@pytest.fixture
def shared(workspace: Path, pg_url: str) -> Path:
    """The workspace on a database of the tests' PostgreSQL server."""
    with_ledger(workspace, pg_url)
    return workspace


class Proc:
    """A ``newsletter`` process with its output kept, ended by its handle."""

    def __init__(self, argv: list[str]) -> None:
        self.popen = subprocess.Popen(
            argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def wait(self, timeout: float) -> tuple[int, str]:
        try:
            out, _ = self.popen.communicate(timeout=timeout)
        finally:
            self.end()
        return self.popen.returncode, out.decode("utf-8", "replace")

    def end(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.communicate(timeout=30)


def wait_for(what: str, check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def send_argv(workspace: Path, issue: str, workers: int | None) -> list[str]:
    """``newsletter send ISSUE -l crowd --transport smtp [--workers N] --yes`` as a process."""
    more = ["--workers", str(workers)] if workers else []
    return subprocess_argv(
        workspace, "send", issue, "-l", "crowd", "--transport", "smtp", *more, "--yes"
    )


def workers_of(store: Store) -> list[tuple[Any, ...]]:
    """(id, host, pid, connections, state, sent, unknown) of each worker."""
    if not store.exists():
        return []  # the first command has not made the ledger's tables yet
    return store.rows(
        "SELECT id, host, pid, connections, state, sent, unknown FROM workers ORDER BY since"
    )


def test_workers_need_the_postgresql_ledger(workspace: Path) -> None:
    result = run(
        workspace,
        "send",
        "newsletters/2025-02-13-steve-kay-blog.yaml",
        "-l",
        "managers",
        "--workers",
        "2",
        "--yes",
    )
    assert result.exit_code == 2, result.output
    assert "--workers needs the PostgreSQL ledger" in result.output
    assert "The SQLite ledger has one sender at a time" in result.output
    joined = run(workspace, "worker", "newsletters/2025-02-13-steve-kay-blog.yaml")
    assert joined.exit_code == 1
    assert "newsletter worker needs the PostgreSQL ledger" in joined.output


def test_a_worker_with_no_send_to_join_says_so(shared: Path) -> None:
    result = run(shared, "worker", "newsletters/2025-02-13-steve-kay-blog.yaml")
    assert result.exit_code == 1
    assert "No send of newsletters/2025-02-13-steve-kay-blog.yaml is running" in result.output


def check_agreement(store: Store, handler: Recorder, emails: list[str]) -> dict[str, int]:
    """Lost nobody, and the ledger agrees with the server per Message-ID; the figures."""
    got = received(handler)
    ids = [m for _, m, _ in got]
    by_person: dict[str, set[str]] = {}
    for rcpt, mid, _ in got:
        by_person.setdefault(rcpt, set()).add(mid)
    rows = store.rows("SELECT email, state, message_id FROM deliveries")
    assert {e for e, _, _ in rows} == set(emails)
    assert {s for _, s, _ in rows} == {"sent"}, Counter(s for _, s, _ in rows)
    assert set(by_person) == set(emails), "someone was missed"
    for email, _, mid in rows:
        assert by_person[email] == {mid}, (email, by_person[email], mid)
    return {
        "messages": len(ids),
        "people": len(set(emails)),
        "duplicates": len(ids) - len(set(ids)),
    }


@pytest.mark.slow
def test_three_workers_one_killed_mid_send_lose_nobody_and_duplicate_at_most_its_connections(
    shared: Path, pg_url: str
) -> None:
    n = 3000
    emails = people(shared, n, "crowd")
    issue = write_issue(shared, "note.yaml", title="Note", date="2025-03-02")
    store = Store("postgresql", shared / "ledger.sqlite", pg_url)
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(shared, port, connections=CONNECTIONS)
        started = time.monotonic()
        coordinator = Proc(send_argv(shared, issue, 3))
        try:
            wait_for("three workers", lambda: len(workers_of(store)) == 3)
            wait_for("a tenth of the messages", lambda: len(handler.messages) >= n // 10)
            victim = workers_of(store)[1]
            os.kill(victim[2], signal.SIGKILL)
            killed_at = len(handler.messages)
            code, out = coordinator.wait(timeout=600)
        finally:
            coordinator.end()
        took = time.monotonic() - started
    assert code == 0, out
    assert "Traceback" not in out
    figures = check_agreement(store, handler, emails)
    assert figures["duplicates"] <= CONNECTIONS, figures
    final = {w[0]: w for w in workers_of(store)}
    assert final[victim[0]][4] == "gone", final
    assert final[victim[0]][6] <= CONNECTIONS  # reported unknown: sent again
    assert {w[4] for k, w in final.items() if k != victim[0]} == {"done"}
    assert "stopped answering" in out and "lost: people put back" in out, out
    assert store.rows("SELECT COUNT(*) FROM sends") == [(1,)]
    assert store.rows("SELECT sent, interrupted FROM sends") == [(n, 0)]
    # Shown with -s, for the closing note.
    print(
        f"\nkill -9: {n} people, 3 workers x {CONNECTIONS} connections, one killed after "
        f"{killed_at} received; unknown (sent again) {final[victim[0]][6]}, duplicates "
        f"{figures['duplicates']}, lost 0, {took:.1f} s ({n / took:.0f} msgs/s)"
    )


def test_a_second_workspace_on_the_same_database_joins_the_send_nobody_twice(
    shared: Path, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    n = 240
    emails = people(shared, n, "crowd")
    issue = write_issue(shared, "note.yaml", title="Note", date="2025-03-02")
    other = tmp_path_factory.mktemp("second-computer")
    shutil.copytree(shared, other, dirs_exist_ok=True)
    store = Store("postgresql", shared / "ledger.sqlite", pg_url)
    handler = SlowRecorder(delay=0.01)
    with aiosmtpd(handler) as port:
        for ws in (shared, other):
            use_smtp(ws, port, connections=CONNECTIONS)
        coordinator = Proc(send_argv(shared, issue, 1))
        try:
            wait_for("the first worker", lambda: len(workers_of(store)) == 1)
            refused = run(other, "send", issue, "-l", "crowd", "--transport", "smtp", "--yes")
            assert refused.exit_code == 1, refused.output
            assert "is being sent right now" in refused.output
            assert "'newsletter worker' joins it" in refused.output
            status = run(other, "status", issue)
            assert "Its workers" in status.output, status.output
            assert str(workers_of(store)[0][2]) in status.output
            joined = run(other, "worker", issue)
            assert joined.exit_code == 0, joined.output
            code, out = coordinator.wait(timeout=300)
        finally:
            coordinator.end()
    assert code == 0, out
    figures = check_agreement(store, handler, emails)
    assert figures["duplicates"] == 0
    sent = {w[1:3]: w[5] for w in workers_of(store)}
    assert len(sent) == 2 and all(sent.values()), sent  # both sent some
    assert sum(sent.values()) == n
    assert "Done: process" in joined.output


def test_two_workspaces_send_different_issues_at_the_same_time(
    shared: Path, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    emails = people(shared, 150, "crowd")
    first = write_issue(shared, "first.yaml", title="First", date="2025-03-02")
    second = write_issue(shared, "second.yaml", title="Second", date="2025-03-03")
    other = tmp_path_factory.mktemp("second-computer")
    shutil.copytree(shared, other, dirs_exist_ok=True)
    store = Store("postgresql", shared / "ledger.sqlite", pg_url)
    handler = SlowRecorder(delay=0.005)
    with aiosmtpd(handler) as port:
        for ws in (shared, other):
            use_smtp(ws, port, connections=CONNECTIONS)
        a = Proc(send_argv(shared, first, 2))
        b = Proc(send_argv(other, second, None))
        try:
            results = [a.wait(timeout=300), b.wait(timeout=300)]
        finally:
            a.end()
            b.end()
    for code, out in results:
        assert code == 0, out
    got = received(handler)
    for subject in ("First", "Second"):
        to = [r for r, _, s in got if s == subject]
        assert sorted(to) == sorted(emails), subject
    assert store.rows(
        "SELECT issue, COUNT(*) FROM deliveries WHERE state = 'sent' GROUP BY issue ORDER BY issue"
    ) == [("first", 150), ("second", 150)]


class TimedRecorder(Recorder):
    """The recording server, noting when each message arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.stamps.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


def test_the_relays_pace_and_daily_quota_are_shared_by_all_workers(
    shared: Path, pg_url: str
) -> None:
    """Two workers at [smtp] rate = 20 together take as long as one would; per_day = 50
    is 50 in all, not 50 each."""
    emails = people(shared, 80, "crowd")
    issue = write_issue(shared, "note.yaml", title="Note", date="2025-03-02")
    store = Store("postgresql", shared / "ledger.sqlite", pg_url)
    handler = TimedRecorder()
    stamps = handler.stamps
    with aiosmtpd(handler) as port:
        use_smtp(shared, port, connections=CONNECTIONS, rate=20, per_day=50)
        result = subprocess.run(
            send_argv(shared, issue, 2),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 75, result.stdout + result.stderr  # the rest can go later
    assert "the daily quota of 50 messages" in result.stdout, result.stdout
    assert len(handler.messages) == 50, len(handler.messages)
    assert len({w[0] for w in workers_of(store)}) == 2
    assert all(w[5] > 0 for w in workers_of(store)), workers_of(store)  # both sent
    # 50 messages at 20 a second, whoever sends them: 49 gaps of 50 ms at least.
    spread = stamps[-1] - stamps[0]
    assert spread >= 49 / 20 * 0.9, spread
    left = store.rows("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
    assert left == [(len(emails) - 50,)]
    again = run(shared, "status", issue)
    assert "pending" in again.output
