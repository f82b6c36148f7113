"""Group commit in the SQLite ledger: the ``sending`` marks of several connections ride
one FULL commit, and every promise of one commit per mark still holds.

Commits are counted in the ledger's own WAL file (a commit is the frame that
carries the database's size), and a second SQLite connection holding the write
lock stands for a slow disk: while it holds it, a commit cannot be written and
the connections' marks gather behind it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sender.ledger import LedgerGone, Planned, SqliteLedger
from sender.send import Eligibility
from sender.transports import Outcome

SENT = Outcome("sent", 250, "2.0.0 Ok: queued")


def planned(n: int) -> list[Planned]:
    return [Planned(f"p{i}@example.org", "a", f"<{i}.x@example.org>") for i in range(n)]


def ledger_for(path: Path, n: int) -> tuple[SqliteLedger, int]:
    ledger = SqliteLedger(path)
    ledger.snapshot("issue", planned(n), Eligibility())
    return ledger, ledger.begin("issue", "T", "2025-01-01", ["a"], "smtp")


def commits(path: Path) -> int:
    """Commit records in the ledger's write-ahead log, read from the file itself."""
    wal = Path(f"{path}-wal").read_bytes()
    if len(wal) < 32:
        return 0
    page = int.from_bytes(wal[8:12], "big")
    salt = wal[16:24]
    count = 0
    for at in range(32, len(wal) - 24 - page + 1, 24 + page):
        frame = wal[at : at + 24]
        if frame[8:16] != salt:  # left over from before the log was restarted
            break
        count += int.from_bytes(frame[4:8], "big") != 0
    return count


def states(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT email, state FROM deliveries"))
    finally:
        db.close()


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (the threads reaching their places); fail after 30 s."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.002)


class Connections:
    """Threads standing for SMTP connections, each marking one person; results kept."""

    def __init__(self, ledger: SqliteLedger, send_id: int) -> None:
        self.ledger, self.send_id = ledger, send_id
        self.results: dict[str, bool | BaseException] = {}
        self.threads: list[threading.Thread] = []

    def mark(self, email: str) -> None:
        def run() -> None:
            try:
                self.results[email] = self.ledger.mark_sending("issue", email, self.send_id)
            except BaseException as exc:
                self.results[email] = exc

        thread = threading.Thread(target=run, name=f"mark {email}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), f"{thread.name} never returned"


@contextmanager
def gathered(ledger: SqliteLedger, send_id: int, emails: list[str]) -> Iterator[Connections]:
    """A connection per address marks its person while the ledger is busy (a snapshot of
    another issue that takes its time, as a slow disk would): the marks gather. On
    leaving, the snapshot ends and every connection returns."""
    inside, go = threading.Event(), threading.Event()

    def slowly() -> Iterator[Planned]:
        inside.set()  # read inside the snapshot's transaction: the ledger is busy now
        yield Planned("someone@example.org", "a", "<someone.x@example.org>")
        go.wait(60)

    busy = threading.Thread(
        target=ledger.snapshot, args=("other", slowly(), Eligibility()), daemon=True
    )
    busy.start()
    connections = Connections(ledger, send_id)
    try:
        assert inside.wait(30)
        for email in emails:
            connections.mark(email)
        until(lambda: ledger.waiting == len(emails), f"{len(emails)} marks waiting")
        assert ledger.committing  # one connection leads, waiting for the ledger
        yield connections
    finally:
        go.set()
        busy.join(60)
        connections.join()


def test_marks_waiting_together_ride_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger, send_id = ledger_for(path, 9)
    everyone = [f"p{i}@example.org" for i in range(9)]
    with gathered(ledger, send_id, everyone) as connections:
        before = commits(path)
    # The snapshot that kept the ledger busy, then one commit for all nine marks.
    assert commits(path) - before == 2
    assert connections.results == dict.fromkeys(everyone, True)
    assert {e: s for e, s in states(path).items() if e in everyone} == dict.fromkeys(
        everyone, "sending"
    )
    ledger.close()


def test_each_commit_says_for_each_mark_whether_it_claimed_its_person(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger, send_id = ledger_for(path, 3)
    ledger.mark_sending("issue", "p2@example.org", send_id)
    ledger.mark_done("issue", "p2@example.org", SENT)
    other = ledger.begin("issue", "T", "2025-01-01", ["a"], "smtp")  # a second send
    # p2 is already sent: no longer pending, so its mark in the shared commit fails.
    everyone = ["p0@example.org", "p1@example.org", "p2@example.org"]
    with gathered(ledger, other, everyone) as connections:
        pass
    assert connections.results == {
        "p0@example.org": True,
        "p1@example.org": True,
        "p2@example.org": False,
    }
    assert {e: s for e, s in states(path).items() if e in everyone} == {
        "p0@example.org": "sending",
        "p1@example.org": "sending",
        "p2@example.org": "sent",
    }
    ledger.close()


def test_each_connections_last_answer_is_on_disk_when_its_next_mark_returns(
    tmp_path: Path,
) -> None:
    """Four connections send 60 messages each at once. Whenever a connection's mark
    returns, the file (read through a connection of its own) says 'sending' for that
    person and has the answer to the connection's previous message: after a crash,
    at most its current message would be unknown."""
    path = tmp_path / "l.sqlite"
    per_connection = 60
    ledger, send_id = ledger_for(path, 4 * per_connection)
    wrong: list[str] = []

    def connection(number: int) -> None:
        reader = sqlite3.connect(path)
        previous = None
        try:
            for i in range(number, 4 * per_connection, 4):
                email = f"p{i}@example.org"
                assert ledger.mark_sending("issue", email, send_id)
                on_disk = dict(
                    reader.execute(
                        "SELECT email, state FROM deliveries WHERE email IN (?, ?)",
                        (email, previous or email),
                    )
                )
                if on_disk[email] != "sending":
                    wrong.append(f"{email} is {on_disk[email]} once its mark returned")
                if previous is not None and on_disk[previous] != "sent":
                    wrong.append(f"{previous} is {on_disk[previous]} when {email} goes")
                ledger.mark_done("issue", email, SENT)
                previous = email
        finally:
            reader.close()

    threads = [threading.Thread(target=connection, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert wrong == []
    ledger.close()
    assert set(states(path).values()) == {"sent"}


def test_a_ledger_replaced_during_a_group_commit_stops_every_connection_in_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.sqlite"
    ledger, send_id = ledger_for(path, 4)
    everyone = [f"p{i}@example.org" for i in range(4)]
    with gathered(ledger, send_id, everyone) as connections:
        other = tmp_path / "other.sqlite"
        sqlite3.connect(other).close()
        os.replace(other, path)
    assert sorted(connections.results) == everyone
    assert all(isinstance(r, LedgerGone) for r in connections.results.values())
    saved = list(tmp_path.glob("l.sqlite.from-send-*[0-9]"))
    assert len(saved) == 1
    kept = states(saved[0])  # what this send had written: nobody marked
    assert {kept[e] for e in everyone} == {"pending"}
    assert ledger.unwritten == 0
    ledger.close()


@pytest.mark.parametrize("n", [1, 499, 500, 501, 1234])
def test_the_queue_keeps_the_callers_order_and_limit_across_lookups(tmp_path: Path, n: int) -> None:
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    people = planned(n)
    snap = ledger.snapshot("issue", people, Eligibility())
    assert (snap.new, snap.to_send) == (n, n)
    send_id = ledger.begin("issue", "T", "2025-01-01", ["a"], "smtp")
    ledger.mark_sending("issue", "p0@example.org", send_id)  # no longer pending
    order = [p.email for p in reversed(people)]
    expected = [(p.email, p.message_id) for p in reversed(people) if p.email != "p0@example.org"]
    assert ledger.queue("issue", order) == expected
    assert ledger.queue("issue", order, limit=7) == expected[:7]
    assert ledger.to_send("issue", order) == [e for e, _ in expected]
    ledger.close()


def test_a_snapshot_taken_again_counts_each_state_once(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger, send_id = ledger_for(path, 6)
    answers = {0: SENT, 1: Outcome("failed", 550, "no"), 2: Outcome("unknown", None, "")}
    for i, outcome in answers.items():
        ledger.mark_sending("issue", f"p{i}@example.org", send_id)
        ledger.mark_done("issue", f"p{i}@example.org", outcome)
    ledger.mark_sending("issue", "p3@example.org", send_id)  # the run stopped here
    people = [*planned(8), planned(8)[7]]  # two new people, p7 named twice
    snap = ledger.snapshot("issue", people, Eligibility())
    assert (snap.new, snap.already_sent, snap.unknown, snap.failed) == (
        2,
        1,
        ["p3@example.org"],
        1,
    )
    # p3 (sending), p4 and p5 (pending), p6 and p7 (new); not p2 (unknown), p1, p0.
    assert snap.to_send == 5
    assert ledger.to_send("issue", [p.email for p in planned(8)]) == [
        f"p{i}@example.org" for i in (3, 4, 5, 6, 7)
    ]
    ledger.close()


class Stopped(Exception):
    """What Ctrl-C is to the main thread, sent by a signal at a chosen moment."""


def _stop(_signum: int, _frame: object) -> None:
    raise Stopped


def test_a_connection_stopped_while_leading_hands_the_commit_to_one_that_waits(
    tmp_path: Path,
) -> None:
    """The main thread leads a commit and is stopped (a signal, as Ctrl-C) while it
    waits for the database: its own mark goes with it, and a connection waiting behind
    it leads instead, so nobody waits for a commit nobody will make."""
    path = tmp_path / "l.sqlite"
    ledger, send_id = ledger_for(path, 3)
    holding, release = threading.Event(), threading.Event()

    def busy() -> None:  # the database busy: the leader waits for it
        with ledger._lock:
            holding.set()
            release.wait(30)

    connections = Connections(ledger, send_id)

    def others() -> None:
        until(lambda: ledger.committing, "the main thread leading a commit")
        connections.mark("p1@example.org")
        connections.mark("p2@example.org")
        until(lambda: ledger.waiting == 3, "two marks waiting behind the leader's")
        os.kill(os.getpid(), signal.SIGUSR1)

    holder = threading.Thread(target=busy, daemon=True)
    holder.start()
    assert holding.wait(30)
    helper = threading.Thread(target=others, daemon=True)
    old = signal.signal(signal.SIGUSR1, _stop)
    try:
        helper.start()
        with pytest.raises(Stopped):
            ledger.mark_sending("issue", "p0@example.org", send_id)
    finally:
        signal.signal(signal.SIGUSR1, old)
        release.set()
    helper.join(30)
    for thread in connections.threads:
        thread.join(10)
        assert not thread.is_alive(), "a waiting connection was never woken to lead"
    assert connections.results == {"p1@example.org": True, "p2@example.org": True}
    ledger.close()
    found = states(path)
    assert [found[f"p{i}@example.org"] for i in range(3)] == ["pending", "sending", "sending"]
