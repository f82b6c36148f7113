"""The ledger: states move as documented, and a send resumes from it.

Every test here runs against both ledgers (the ``store`` fixture: an SQLite
file, and a database of the tests' PostgreSQL server), except the one that
checks SQLite's own journal mode."""

from __future__ import annotations

import email
import email.policy
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import Cli, body
from pg import Store

from sender.ledger import Planned, SqliteLedger, by_list, schema
from sender.send import Eligibility
from sender.transports import Outcome

FIRST_TIME = Eligibility()  # no --resend, no --retry-failed

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"


pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]


def people(n: int, lists: str = "a") -> list[Planned]:
    return [Planned(f"p{i}@example.org", lists, f"<{i}.x@example.org>") for i in range(n)]


def test_snapshot_records_everyone_pending(store: Store) -> None:
    ledger = store.open()
    snap = ledger.snapshot("issue", people(5), FIRST_TIME)
    assert (snap.new, snap.already_sent, snap.unknown, snap.failed, snap.to_send) == (
        5,
        0,
        [],
        0,
        5,
    )
    assert {d.state for d in ledger.deliveries("issue")} == {"pending"}
    assert store.rows("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'") == [(5,)]
    ledger.close()


def test_the_sqlite_ledger_lets_readers_read_while_it_writes(tmp_path: Path) -> None:
    SqliteLedger(tmp_path / "l.sqlite").close()
    # WAL mode: readers never block the sender.
    mode = sqlite3.connect(tmp_path / "l.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_states_decide_who_is_sent_next_time(store: Store) -> None:
    ledger = store.open()
    ledger.snapshot("issue", people(5), FIRST_TIME)
    send_id = ledger.begin("issue", "T", "2025-01-01", ["a"], "smtp")
    outcomes = {
        0: Outcome("sent", 250, "ok"),
        1: Outcome("failed", 550, "no such user"),
        2: Outcome("deferred", 451, "try later"),
    }
    for i, outcome in outcomes.items():
        ledger.mark_sending("issue", f"p{i}@example.org", send_id)
        ledger.mark_done("issue", f"p{i}@example.org", outcome)
    ledger.mark_sending("issue", "p3@example.org", send_id)  # then the power went
    record = ledger.finish(send_id, interrupted=True)
    assert (record.sent, record.failed, record.deferred, record.interrupted) == (1, 1, 1, True)
    ledger.close()

    again = store.open()
    snap = again.snapshot("issue", people(6), FIRST_TIME)
    assert snap.new == 1 and snap.already_sent == 1 and snap.failed == 1
    assert snap.unknown == ["p3@example.org"]
    everyone = [p.email for p in people(6)]
    assert again.to_send("issue", everyone) == [
        "p2@example.org",  # deferred: tried again
        "p3@example.org",  # outcome unknown: sent again, and reported
        "p4@example.org",
        "p5@example.org",
    ]
    assert again.to_send("issue", everyone, limit=2) == ["p2@example.org", "p3@example.org"]
    failed = next(d for d in again.deliveries("issue") if d.email == "p1@example.org")
    assert (failed.state, failed.code, failed.detail, failed.attempts) == (
        "failed",
        550,
        "no such user",
        1,
    )
    retry = again.snapshot("issue", people(6), Eligibility(retry_failed=True, resend=True))
    assert retry.to_send == 6
    again.close()


def test_an_answer_is_on_disk_before_the_next_message_goes(store: Store) -> None:
    """What another process (or the next run, after a kill) reads from the ledger:
    an answer is committed with the next ``sending`` mark, so each connection
    has at most one message in the state 'sending'."""
    ledger = store.open()
    ledger.snapshot("issue", people(3), FIRST_TIME)
    send_id = ledger.begin("issue", "T", "2025-01-01", ["a"], "smtp")

    def on_disk() -> dict[str, str]:
        return dict(store.rows("SELECT email, state FROM deliveries"))

    ledger.mark_sending("issue", "p0@example.org", send_id)
    ledger.mark_done("issue", "p0@example.org", Outcome("sent", 250, "ok"))
    assert on_disk()["p0@example.org"] == "sending"  # answer not yet committed
    assert {d.email: d.state for d in ledger.deliveries("issue")}["p0@example.org"] == "sent"
    ledger.mark_sending("issue", "p1@example.org", send_id)
    ledger.mark_done("issue", "p1@example.org", Outcome("deferred", 451, "later"))
    ledger.mark_sending("issue", "p2@example.org", send_id)
    assert on_disk() == {
        "p0@example.org": "sent",
        "p1@example.org": "deferred",
        "p2@example.org": "sending",
    }
    ledger.mark_done("issue", "p2@example.org", Outcome("sent", 250, "ok"))
    ledger.close()  # the last answers are committed on close (and by finish)
    assert on_disk()["p2@example.org"] == "sent"


def test_counts_per_list_count_a_person_on_two_lists_in_each(store: Store) -> None:
    ledger = store.open()
    ledger.snapshot(
        "issue", [*people(2, "a+b"), Planned("z@example.org", "b", "<z@x>")], FIRST_TIME
    )
    counts = by_list(ledger.deliveries("issue"))
    assert counts["a"]["pending"] == 2 and counts["b"]["pending"] == 3
    ledger.close()


@pytest.mark.usefixtures("ledger_url")
def test_limit_sends_the_next_n_and_the_same_command_continues(cli: Cli, workspace: Path) -> None:
    outbox = workspace / "outbox" / "2025-02-13-steve-kay-blog"
    first = cli("send", BLOG, "--list", "managers", "--limit", "10", "--yes")
    assert first.exit_code == 0, first.output
    assert len(list(outbox.glob("*.eml"))) == 10
    status = cli("status", BLOG)
    assert "managers" in status.output
    # pending 15, sending 0, sent 10
    assert re.search(r"managers\s*│\s*15\s*│\s*0\s*│\s*10\s*│", status.output), status.output
    second = cli("send", BLOG, "--list", "managers", "--yes")
    assert second.exit_code == 0, second.output
    assert "10 are already in the outbox and are skipped" in second.output
    assert len(list(outbox.glob("*.eml"))) == 25
    third = cli("send", BLOG, "--list", "managers", "--yes")
    assert "Everyone on these lists is already in the outbox" in third.output


@pytest.mark.usefixtures("ledger_url")
def test_status_before_any_send(cli: Cli, store: Store) -> None:
    result = cli("status", BLOG)
    assert result.exit_code == 0
    assert "has not been sent to anyone yet" in result.output
    assert not store.exists()


@pytest.mark.usefixtures("ledger_url")
def test_dry_run_records_nothing(cli: Cli, store: Store) -> None:
    result = cli("send", BLOG, "--list", "managers", "--dry-run")
    assert result.exit_code == 0
    assert not store.exists()


@pytest.mark.usefixtures("ledger_url")
def test_a_test_send_goes_to_anyone_and_is_not_counted(
    cli: Cli, workspace: Path, store: Store
) -> None:
    result = cli("send", BLOG, "--test-to", "me@example.net", "--as-list", "headteachers")
    assert result.exit_code == 0, result.output
    files = list((workspace / "outbox" / "2025-02-13-steve-kay-blog" / "tests").glob("*.eml"))
    assert [f.name for f in files] == ["me@example.net.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"].startswith("[TEST] ")
    assert msg["To"] == "me@example.net"
    first_head = (workspace / "recipients" / "headteachers.csv").read_text("utf-8").splitlines()[1]
    first_name = first_head.split(",")[1]
    assert f"Dear {first_name}," in body(msg, "plain")
    status = cli("status", BLOG)
    assert "has not been sent to anyone yet" in status.output
    rows = store.rows("SELECT email, as_lists, state FROM test_sends")
    assert rows == [("me@example.net", "headteachers", "sent")]


@pytest.mark.usefixtures("ledger_url")
def test_a_test_send_as_someone_not_on_the_list_is_refused(cli: Cli) -> None:
    result = cli("send", BLOG, "--test-to", "me@example.net", "--as-recipient", "x@example.org")
    assert result.exit_code == 2
    assert "x@example.org is not on" in result.output


def test_two_programs_opening_a_new_ledger_at_once_take_each_step_once(tmp_path: Path) -> None:
    """Two sends started together on a folder with no ledger both bring the new
    file forward: the one that waited for the lock must not take the steps the
    other took meanwhile (it said 'duplicate column name: scope' and stopped)."""
    path = tmp_path / "ledger.sqlite"
    first = sqlite3.connect(path, isolation_level=None, timeout=30)
    first.execute("PRAGMA journal_mode=WAL")
    first.executescript(schema._V1)  # a new file, as both programs find it
    first.execute("BEGIN IMMEDIATE")  # the first program is bringing it forward
    second = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    outcome: list[object] = []
    waiting = threading.Thread(target=lambda: outcome.append(_migrated(second)), daemon=True)
    waiting.start()
    time.sleep(0.5)  # the second has read the file's version and waits for the lock
    assert waiting.is_alive()
    for step in range(2, schema.VERSION + 1):
        schema.STEPS[step](first)
    first.execute(f"PRAGMA user_version = {schema.VERSION}")
    first.execute("COMMIT")
    waiting.join(30)
    assert outcome == [[]], outcome  # the second found nothing left to do
    assert second.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION
    first.close()
    second.close()


def _migrated(db: sqlite3.Connection) -> object:
    try:
        return schema.migrate(db)
    except sqlite3.Error as exc:
        return exc
