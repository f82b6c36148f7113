"""Who got what, when, and what the server said: one row per issue and person.

A send first snapshots its recipients as ``pending``, then records
``sending`` just before each message goes out and ``sent`` / ``deferred`` /
``failed`` once the server answers. So after any crash the rows say exactly
what is known: ``sent`` is never sent again, ``pending`` is sent next time,
and ``sending`` means "handed over, answer unknown" — at most one per open
connection — which is sent again and reported.

One commit (with its fsync, so it survives a power cut) per message: a
connection's ``sending`` mark is committed, before its message goes, together
with the answers that came in since the last commit — among them that
connection's previous message. So the previous answer is on disk before the
next message is handed over, which is all "at most one unknown per
connection" needs, at half the fsyncs of committing each mark alone. A
reader (``newsletter status``) sees an answer when the next message starts.

``Ledger`` is the small interface the rest of the program uses; this module's
``SqliteLedger`` is one implementation. Several senders sharing one send
would need a PostgreSQL module with the same methods (rows claimed with
``SELECT … FOR UPDATE SKIP LOCKED``), not a rewrite.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .audiences import key_lists
from .config import Config
from .transports.base import DELIVERY_STATES, DeliveryState, Outcome

STATES = DELIVERY_STATES
# Whether a person in this state is sent to this run: the send's rule, not the ledger's.
Eligible = Callable[[DeliveryState], bool]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY,
    issue TEXT NOT NULL,
    title TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    lists TEXT NOT NULL,
    transport TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    deferred INTEGER NOT NULL DEFAULT 0,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deliveries (
    issue TEXT NOT NULL,
    email TEXT NOT NULL,
    lists TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({states})),
    code INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    send_id INTEGER REFERENCES sends (id),
    updated TEXT NOT NULL,
    PRIMARY KEY (issue, email)
);
-- An index on state doubled the cost of each mark; the primary key already
-- finds an issue's rows, which is all the one query by state needs.
DROP INDEX IF EXISTS deliveries_state;
CREATE TABLE IF NOT EXISTS test_sends (
    id INTEGER PRIMARY KEY,
    issue TEXT NOT NULL,
    email TEXT NOT NULL,
    as_lists TEXT NOT NULL,
    as_recipient TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    code INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);
""".format(states=", ".join(f"'{s}'" for s in DELIVERY_STATES))


@dataclass(frozen=True)
class Planned:
    """One person in a send's snapshot."""

    email: str
    lists: str  # audience key: 'headteachers' or 'headteachers+managers'
    message_id: str


@dataclass(frozen=True)
class Delivery:
    issue: str
    email: str
    lists: str
    message_id: str
    state: DeliveryState
    code: int | None
    detail: str
    attempts: int
    updated: str


@dataclass(frozen=True)
class SendRecord:
    id: int
    issue: str
    title: str
    issue_date: str
    lists: tuple[str, ...]
    transport: str
    started: str
    finished: str | None
    sent: int
    failed: int
    deferred: int
    interrupted: bool


@dataclass(frozen=True)
class Snapshot:
    """What a new run found: how many were new, and what earlier runs left."""

    new: int
    already_sent: int
    unknown: list[str]  # were 'sending' when a run stopped: outcome unknown, sent again
    failed: int  # earlier hard failures, skipped unless retried
    to_send: int


class Ledger(Protocol):
    def begin(
        self, issue: str, title: str, issue_date: str, lists: Sequence[str], transport: str
    ) -> int: ...
    def snapshot(
        self,
        issue: str,
        people: Iterable[Planned],
        eligible: Eligible,
    ) -> Snapshot: ...
    def to_send(self, issue: str, emails: Iterable[str], limit: int | None = None) -> list[str]: ...
    def mark_sending(self, issue: str, email: str, send_id: int) -> None: ...
    def mark_done(self, issue: str, email: str, outcome: Outcome) -> None: ...
    def finish(self, send_id: int, *, interrupted: bool) -> SendRecord: ...
    def deliveries(self, issue: str) -> list[Delivery]: ...
    def record_test(
        self,
        issue: str,
        email: str,
        as_lists: str,
        as_recipient: str,
        message_id: str,
        outcome: Outcome,
    ) -> None: ...
    def sends(self) -> list[SendRecord]: ...
    def close(self) -> None: ...


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SqliteLedger:
    """The ledger in one SQLite file (WAL, fsync on every commit)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Worker threads report outcomes; one connection, one lock, short transactions.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a 'sent' row survives power loss, so it is never sent twice.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._answers: list[tuple[object, ...]] = []  # mark_done's, not yet committed
        # Its own lock: an answer is noted without waiting for another thread's fsync.
        self._answers_lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._commit_answers()
            self._db.close()

    def _take_answers(self) -> list[tuple[object, ...]]:
        # Under the database lock: whoever takes an answer commits it before
        # any later mark_sending can.
        with self._answers_lock:
            answers, self._answers = self._answers, []
        return answers

    def _commit_answers(self, then: tuple[object, ...] | None = None) -> None:
        """Commit the answers waiting, and a ``sending`` mark if given (hold the lock)."""
        answers = self._take_answers()
        if not answers and then is None:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # one transaction (one fsync) for them all
        try:
            db.executemany(_DONE, answers)
            if then is not None:
                db.execute(_SENDING, then)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            with self._answers_lock:
                self._answers[:0] = answers
            raise

    # -- a send ------------------------------------------------------------
    def begin(
        self, issue: str, title: str, issue_date: str, lists: Sequence[str], transport: str
    ) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO sends (issue, title, issue_date, lists, transport, started) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (issue, title, issue_date, ",".join(lists), transport, now()),
            )
            return int(cur.lastrowid or 0)

    def snapshot(
        self,
        issue: str,
        people: Iterable[Planned],
        eligible: Eligible,
    ) -> Snapshot:
        """Record everyone as pending before the first message (one transaction).

        New people are pending; others are made pending again when ``eligible``
        says their state is sent to this run.
        """
        stamp = now()
        new = already = failed = 0
        unknown: list[str] = []
        emails: list[str] = []
        with self._lock:
            db = self._db
            self._commit_answers()
            db.execute("BEGIN IMMEDIATE")
            try:
                for p in people:
                    emails.append(p.email)
                    row = db.execute(
                        "SELECT state FROM deliveries WHERE issue = ? AND email = ?",
                        (issue, p.email),
                    ).fetchone()
                    if row is None:
                        db.execute(
                            "INSERT INTO deliveries (issue, email, lists, message_id, state,"
                            " updated) VALUES (?, ?, ?, ?, 'pending', ?)",
                            (issue, p.email, p.lists, p.message_id, stamp),
                        )
                        new += 1
                        continue
                    state = row[0]
                    again = eligible(state)
                    if state == "sending":
                        unknown.append(p.email)
                    elif state == "sent" and not again:
                        already += 1
                    elif state == "failed" and not again:
                        failed += 1
                    if again and state != "pending":
                        db.execute(
                            "UPDATE deliveries SET state = 'pending', lists = ?, updated = ? "
                            "WHERE issue = ? AND email = ?",
                            (p.lists, stamp, issue, p.email),
                        )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        to_send = len(self._pending(issue, emails, None))
        return Snapshot(new, already, unknown, failed, to_send)

    def to_send(self, issue: str, emails: Iterable[str], limit: int | None = None) -> list[str]:
        """The pending among ``emails``, in the order given, at most ``limit``."""
        return self._pending(issue, list(emails), limit)

    def _pending(self, issue: str, emails: list[str], limit: int | None) -> list[str]:
        with self._lock:
            self._commit_answers()
            pending = {
                e
                for (e,) in self._db.execute(
                    "SELECT email FROM deliveries WHERE issue = ? AND state = 'pending'",
                    (issue,),
                )
            }
        chosen = [e for e in emails if e in pending]
        return chosen if limit is None else chosen[:limit]

    def mark_sending(self, issue: str, email: str, send_id: int) -> None:
        with self._lock:
            self._commit_answers(then=(send_id, now(), issue, email))

    def mark_done(self, issue: str, email: str, outcome: Outcome) -> None:
        with self._answers_lock:
            self._answers.append((outcome.state, outcome.code, outcome.text, now(), issue, email))

    def finish(self, send_id: int, *, interrupted: bool) -> SendRecord:
        with self._lock:
            self._commit_answers()
            counts = dict(
                self._db.execute(
                    "SELECT state, COUNT(*) FROM deliveries WHERE send_id = ? GROUP BY state",
                    (send_id,),
                ).fetchall()
            )
            self._db.execute(
                "UPDATE sends SET finished = ?, sent = ?, failed = ?, deferred = ?,"
                " interrupted = ? WHERE id = ?",
                (
                    now(),
                    counts.get("sent", 0),
                    counts.get("failed", 0),
                    counts.get("deferred", 0),
                    int(interrupted),
                    send_id,
                ),
            )
            row = self._db.execute(
                f"SELECT {_SEND_COLUMNS} FROM sends WHERE id = ?", (send_id,)
            ).fetchone()
        return _send_record(row)

    # -- reading -------------------------------------------------------------
    def deliveries(self, issue: str) -> list[Delivery]:
        with self._lock:
            self._commit_answers()
            rows = self._db.execute(
                "SELECT issue, email, lists, message_id, state, code, detail, attempts, updated"
                " FROM deliveries WHERE issue = ? ORDER BY rowid",
                (issue,),
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def sends(self) -> list[SendRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_SEND_COLUMNS} FROM sends ORDER BY id").fetchall()
        return [_send_record(r) for r in rows]

    def record_test(
        self,
        issue: str,
        email: str,
        as_lists: str,
        as_recipient: str,
        message_id: str,
        outcome: Outcome,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO test_sends (issue, email, as_lists, as_recipient, message_id,"
                " state, code, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    issue,
                    email,
                    as_lists,
                    as_recipient,
                    message_id,
                    outcome.state,
                    outcome.code,
                    outcome.text,
                    now(),
                ),
            )


_SENDING = (
    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, send_id = ?,"
    " updated = ? WHERE issue = ? AND email = ?"
)
_DONE = (
    "UPDATE deliveries SET state = ?, code = ?, detail = ?, updated = ? "
    "WHERE issue = ? AND email = ?"
)

_SEND_COLUMNS = (
    "id, issue, title, issue_date, lists, transport, started, finished, sent, failed,"
    " deferred, interrupted"
)


def _send_record(row: tuple) -> SendRecord:  # type: ignore[type-arg]
    values = list(row)
    values[4] = tuple(x for x in values[4].split(",") if x)
    values[11] = bool(values[11])
    return SendRecord(*values)


def by_list(deliveries: Iterable[Delivery]) -> dict[str, dict[str, int]]:
    """Counts per list and state; a person on two lists counts in each."""
    out: dict[str, dict[str, int]] = {}
    for d in deliveries:
        for name in key_lists(d.lists):
            counts = out.setdefault(name, dict.fromkeys(STATES, 0))
            counts[d.state] += 1
    return out


def iter_failures(deliveries: Iterable[Delivery]) -> Iterator[Delivery]:
    return (d for d in deliveries if d.state in ("failed", "deferred"))


class LedgerReader(Protocol):
    """What ``status``, ``history`` and the archive read."""

    def deliveries(self, issue: str) -> list[Delivery]: ...
    def sends(self) -> list[SendRecord]: ...


class _Nothing:
    """The record of a folder that has sent nothing yet: no file is made to say so."""

    def deliveries(self, issue: str) -> list[Delivery]:
        return []

    def sends(self) -> list[SendRecord]:
        return []


def ledger_path(config: Config) -> Path:
    return config.resolve(config.ledger)


@contextmanager
def open_ledger(config: Config) -> Iterator[SqliteLedger]:
    """The workspace's ledger, created if need be, closed (answers committed) on exit."""
    ledger = SqliteLedger(ledger_path(config))
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def read_ledger(config: Config) -> Iterator[LedgerReader]:
    """The ledger to read, or an empty record when nothing was ever sent (no file made)."""
    if not ledger_path(config).exists():
        yield _Nothing()
        return
    with open_ledger(config) as ledger:
        yield ledger
