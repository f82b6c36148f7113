"""The ledger in one SQLite file: WAL, and an fsync on every commit.

A send first snapshots its recipients as ``pending``, then records
``sending`` just before each message goes out and ``sent`` / ``deferred`` /
``failed`` / ``unknown`` once the server answers (or does not). So after any
crash the rows say exactly what is known: ``sent`` is never sent again,
``pending`` is sent next time, and ``sending`` means "handed over, answer
unknown" — at most one per open connection — which is sent again and reported.

Group commit: a connection's ``sending`` mark is committed (with its fsync,
so it survives a power cut) before its message goes, together with the
answers that came in since the last commit — among them that connection's
previous message — and with the marks other connections are waiting on at
that moment. Whichever waiting connection finds no commit running writes all
of them in one transaction; the others wait only for the commit holding their
own mark. So each connection's previous answer is on disk before its next
message is handed over, which is all "at most one unknown per connection"
needs, and four connections share one fsync instead of queueing for four.

The file holds people's data: it is created readable by its owner only, and
SQLite gives its -wal and -shm files the same permissions.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..clock import Clock, stamp
from ..transports.base import DeliveryState, Outcome
from .errors import IssueHeld, LedgerDamaged, LedgerError, LedgerFull, LedgerGone
from .records import (
    Delivery,
    Eligible,
    Holder,
    IssueRecord,
    Planned,
    Scope,
    SendRecord,
    Snapshot,
    Suppression,
    TokenRecord,
)
from .schema import VERSION, migrate

_SQLITE_FULL = 13
_SLICE = 500  # addresses looked up per query (SQLite allows 32,766 parameters)
# The Message-ID a person is sent again with (--resend): the n-th generation.
_Renew = Callable[[Planned, int], str]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _private(path: Path) -> None:
    """Create the file 0600 whatever the umask, before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)


def _damaged(path: Path, exc: BaseException) -> LedgerDamaged:
    return LedgerDamaged(
        f"The ledger {path} cannot be read: {exc}. Nothing was sent or changed. "
        "It records who has been sent what, so it is not replaced by an empty one. "
        "Run 'newsletter ledger check' to see what is wrong, and "
        "'newsletter ledger recover' to save what can be read into a new ledger "
        "(the damaged file is kept beside it)."
    )


def _full(path: Path) -> LedgerFull:
    return LedgerFull(
        f"The disk is full: the ledger {path} cannot record any more. The send stopped; "
        "what the mail server answered is kept and written as soon as there is room. "
        "Free some space, then run the same command again: nobody who got the issue "
        "gets it again."
    )


class SqliteLedger:
    """The ledger in one SQLite file (WAL, fsync on every commit)."""

    def __init__(self, path: Path, *, clock: Clock | None = None) -> None:
        self.path = path
        # When answers are stamped (the daily quota counts them): a test's clock, or now.
        self._now = now if clock is None else lambda: stamp(clock.now())
        _private(path)
        # Worker threads report outcomes; one connection, one lock, short transactions.
        try:
            self._db = _connect(path)
            migrate(self._db)
        except RuntimeError as exc:
            raise LedgerError(
                f"The ledger {path} was written by a newer version of newsletter ({exc}, "
                f"this one knows {VERSION}). Upgrade newsletter to use it."
            ) from None
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_full(exc):
                raise _full(path) from None
            raise _damaged(path, exc) from None
        self._identity = _file_identity(path)
        self._lock = threading.Lock()
        self._answers: list[tuple[object, ...]] = []  # mark_done's, not yet committed
        # Its own lock: an answer is noted without waiting for another thread's fsync.
        self._answers_lock = threading.Lock()
        # mark_sending's, waiting for the next group commit (under the answers' lock);
        # one thread leads a commit at a time.
        self._marks: list[_Mark] = []
        self._leading = False
        self._heartbeat: _Heartbeat | None = None
        self._heartbeat_every = 5.0

    def close(self) -> None:
        with self._lock:
            if self._heartbeat is not None:
                self._heartbeat.stop()
                self._heartbeat = None
            try:
                self._commit_answers()
            finally:
                self._db.close()

    # -- the file under us -----------------------------------------------------
    def _check_file(self) -> None:
        """Stop if the file was deleted or replaced while we write to it."""
        if _file_identity(self.path) == self._identity:
            return
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        if not self.path.exists():
            # We still hold the deleted file open: put it back where it was.
            self._carry_over(self.path)
            raise LedgerGone(
                f"The ledger {self.path} was deleted while this send was running. It has been "
                "written back from the copy this send still had open, and the send stopped. "
                "Run the same command again to carry on."
            )
        saved = self.path.with_name(f"{self.path.name}.from-send-{stamp}")
        original = self.path
        self._carry_over(saved)
        raise LedgerGone(
            f"The ledger {original} was replaced by another file while this send was running, "
            f"so the send stopped. What this send recorded is saved as {saved}: if the new "
            f"file is not the one you meant, move {saved.name} back to {original.name} "
            "before sending again."
        )

    def _carry_over(self, target: Path) -> None:
        """Copy what this ledger holds to ``target`` and go on writing there: what the
        stopping send still records (its last answers, letting go of the issue) must land
        in the file the user keeps, not in the one that is gone."""
        _private(target)
        copy = sqlite3.connect(target)
        try:
            self._db.backup(copy)
        finally:
            copy.close()
        self._db.close()
        self._db = _connect(target)
        self.path = target
        self._identity = _file_identity(target)
        if self._heartbeat is not None:  # the hold is renewed in the file kept, too
            holder = self._heartbeat.holder
            self._heartbeat.stop()
            self._heartbeat = _Heartbeat(target, holder, interval=self._heartbeat_every)

    def _commit_answers(self, marks: Sequence[tuple[object, ...]] = ()) -> list[bool]:
        """Commit the answers waiting, and the ``sending`` marks given (hold the lock).

        Returns, mark by mark, whether it claimed its row (it was still pending)."""
        answers = self._take_answers()
        if not answers and not marks:
            return []
        try:
            if marks:
                self._check_file()  # may move to another file: self._db after it
            db = self._db
            db.execute("BEGIN IMMEDIATE")  # one transaction (one fsync) for them all
            db.executemany(_DONE, answers)
            # One by one: each connection needs to know whether its own row was claimed.
            claimed = [db.execute(_SENDING, mark).rowcount == 1 for mark in marks]
            db.execute("COMMIT")
        except BaseException as exc:
            # A failed COMMIT (disk full) has already rolled back.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            with self._answers_lock:
                self._answers[:0] = answers
            if isinstance(exc, sqlite3.OperationalError) and _is_full(exc):
                raise _full(self.path) from None
            raise
        return claimed

    def _take_answers(self) -> list[tuple[object, ...]]:
        # Under the database lock: whoever takes an answer commits it before
        # any later mark_sending can.
        with self._answers_lock:
            answers, self._answers = self._answers, []
        return answers

    @property
    def unwritten(self) -> int:
        """Answers received but not yet on disk (after a full disk, say)."""
        with self._answers_lock:
            return len(self._answers)

    @property
    def waiting(self) -> int:
        """``sending`` marks made but not yet taken into a commit."""
        with self._answers_lock:
            return len(self._marks)

    @property
    def committing(self) -> bool:
        """Whether a connection is writing a group commit now."""
        with self._answers_lock:
            return self._leading

    def _write(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise _full(self.path) from None
            raise

    # -- issues ------------------------------------------------------------
    def issues(self) -> list[IssueRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, file, date, title FROM issues ORDER BY created"
            ).fetchall()
        return [IssueRecord(*row) for row in rows]

    def save_issue(self, record: IssueRecord) -> None:
        """Add an issue, or note the file and title it was last sent from."""
        stamp = now()
        with self._lock:
            self._write(
                "INSERT INTO issues (key, file, date, title, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " file = excluded.file, date = excluded.date, title = excluded.title,"
                " updated = excluded.updated",
                (record.key, record.file, record.date, record.title, stamp, stamp),
            )

    def unfinished(self, issue: str) -> int:
        """People not yet sent to (or unknown) in the issue's real deliveries."""
        with self._lock:
            self._commit_answers()
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE issue = ?"
                " AND state IN ('pending', 'sending', 'deferred', 'unknown')",
                (issue,),
            ).fetchone()
        return int(n)

    # -- one sender at a time ----------------------------------------------------
    def hold(self, issue: str, *, stale_after: float = 30.0) -> Holder | None:
        """Take the issue for this process; the holder it took over from, if any.

        Raises IssueHeld if a live sender has it. A holder is stale when its
        heartbeat is older than ``stale_after`` seconds, or when it ran on this
        machine and its process is gone (``kill -9``).
        """
        me = Holder(
            issue, socket.gethostname(), os.getpid(), now(), time.time(), os.urandom(16).hex()
        )
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT issue, host, pid, since, heartbeat, token FROM holds WHERE issue = ?",
                    (issue,),
                ).fetchone()
                previous = Holder(*row) if row else None
                if previous is not None and not _stale(previous, stale_after):
                    raise IssueHeld(
                        f"This issue is being sent right now by {previous.describe()}. "
                        "Two sends at once would send some people the issue twice, so this one "
                        "did not start. Wait for that send to finish (newsletter status shows "
                        "how far it has got), or stop it first.",
                        previous,
                    )
                db.execute(
                    "INSERT OR REPLACE INTO holds (issue, host, pid, since, heartbeat, token)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (me.issue, me.host, me.pid, me.since, me.heartbeat, me.token),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self._heartbeat_every = max(stale_after / 6, 0.05)
            self._heartbeat = _Heartbeat(self.path, me, interval=self._heartbeat_every)
        return previous

    def release(self, issue: str) -> None:
        with self._lock:
            if self._heartbeat is not None:
                token = self._heartbeat.holder.token
                self._heartbeat.stop()
                self._heartbeat = None
                self._write("DELETE FROM holds WHERE issue = ? AND token = ?", (issue, token))

    def holders(self) -> list[Holder]:
        with self._lock:
            rows = self._db.execute(
                "SELECT issue, host, pid, since, heartbeat, token FROM holds"
            ).fetchall()
        return [Holder(*row) for row in rows]

    # -- a send ------------------------------------------------------------
    def begin(
        self,
        issue: str,
        title: str,
        issue_date: str,
        lists: Sequence[str],
        transport: str,
        *,
        scope: Scope = "delivery",
        file: str = "",
    ) -> int:
        with self._lock:
            cur = self._write(
                "INSERT INTO sends (issue, title, issue_date, lists, transport, started, scope,"
                " file) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (issue, title, issue_date, ",".join(lists), transport, now(), scope, file),
            )
            return int(cur.lastrowid or 0)

    def snapshot(
        self,
        issue: str,
        people: Iterable[Planned],
        eligible: Eligible,
        *,
        renew: _Renew | None = None,
    ) -> Snapshot:
        """Record everyone as pending before the first message (one transaction).

        New people are pending; others are made pending again when ``eligible``
        says their state is sent to this run. A person sent again after they
        had it (``--resend``) gets a new Message-ID from ``renew(person,
        generation)``, so receivers do not drop it as a duplicate.

        The issue's rows are read in one query and the new people written by
        one prepared statement as ``people`` is read, not a query per person.
        """
        stamp = now()
        with self._lock:
            db = self._db
            self._commit_answers()
            db.execute("BEGIN IMMEDIATE")
            try:
                known = {
                    email: (state, generation)
                    for email, state, generation in db.execute(
                        "SELECT email, state, generation FROM deliveries WHERE issue = ?",
                        (issue,),
                    )
                }
                tally = _Tally(known, eligible, renew, stamp)
                before = db.total_changes
                db.executemany(
                    "INSERT INTO deliveries (issue, email, address, lists, message_id, state,"
                    " updated) VALUES (?, ?, ?, ?, ?, 'pending', ?)"
                    " ON CONFLICT (issue, email) DO NOTHING",
                    tally.new_rows(issue, people),
                )
                new = db.total_changes - before
                db.executemany(
                    "UPDATE deliveries SET state = 'pending', lists = ?, updated = ?,"
                    " generation = ?, message_id = COALESCE(?, message_id)"
                    " WHERE issue = ? AND email = ?",
                    tally.again,
                )
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _is_full(exc):
                    raise _full(self.path) from None
                raise
        return Snapshot(new, tally.already, tally.unknown, tally.failed, new + tally.pending)

    def to_send(self, issue: str, emails: Iterable[str], limit: int | None = None) -> list[str]:
        """The pending among ``emails``, in the order given, at most ``limit``."""
        return [e for e, _ in self._pending(issue, list(emails), limit)]

    def queue(
        self, issue: str, emails: Iterable[str], limit: int | None = None
    ) -> list[tuple[str, str]]:
        """Like ``to_send``, with the Message-ID each is sent with."""
        return self._pending(issue, list(emails), limit)

    def _pending(self, issue: str, emails: list[str], limit: int | None) -> list[tuple[str, str]]:
        # Looked up a slice of ``emails`` at a time: the answer holds the caller's
        # strings and only the Message-IDs are new, not a copy of the issue's rows.
        chosen: list[tuple[str, str]] = []
        with self._lock:
            self._commit_answers()
            for start in range(0, len(emails), _SLICE):
                some = emails[start : start + _SLICE]
                ids = dict(
                    self._db.execute(
                        "SELECT email, message_id FROM deliveries WHERE issue = ?"
                        f" AND state = 'pending' AND email IN ({', '.join('?' * len(some))})",
                        (issue, *some),
                    ).fetchall()
                )
                chosen += [(e, ids[e]) for e in some if e in ids]
                if limit is not None and len(chosen) >= limit:
                    break
        return chosen if limit is None else chosen[:limit]

    def mark_sending(self, issue: str, email: str, send_id: int) -> bool:
        """Claim a pending person for this send, just before their message goes.

        False when they are no longer pending (another sender claimed them):
        their message must not go. Returns once the mark is on disk, in the
        first group commit that starts after it was made."""
        mark = _Mark((send_id, now(), issue, email, send_id))
        with self._answers_lock:
            self._marks.append(mark)
            lead = not self._leading
            self._leading = True
        if not lead:
            mark.woken.wait()  # committed, or asked to lead the next commit
            lead = not mark.done
        if lead:
            self._lead(mark)
        if mark.error is not None:
            raise mark.error
        return mark.claimed

    def _lead(self, mine: _Mark) -> None:
        """Commit every mark waiting (this thread's among them) and the answers, at once.

        The marks are taken under the database lock, and the answers after
        them: an answer given before a connection's next mark is in that
        mark's commit or in one that ended before it began. Only the
        connections in the commit are woken, and one that waits, to lead the next."""
        marks: list[_Mark] = []
        error: BaseException | None = None
        claimed: list[bool] = []
        try:
            with self._lock:
                with self._answers_lock:
                    marks, self._marks = self._marks, []
                claimed = self._commit_answers([m.args for m in marks])
        except BaseException as exc:  # every connection in this commit stops with it
            error = exc
        finally:
            with self._answers_lock:
                for i, m in enumerate(marks):
                    m.claimed = claimed[i] if error is None else False
                    m.error = error
                    m.done = True
                    m.woken.set()
                if not mine.done:  # stopped before it took the marks (Ctrl-C, say)
                    self._marks.remove(mine)
                    mine.error, mine.done = error, True
                if self._marks:
                    self._marks[0].woken.set()  # it leads the next commit
                else:
                    self._leading = False

    def mark_done(self, issue: str, email: str, outcome: Outcome) -> None:
        with self._answers_lock:
            self._answers.append(
                (
                    outcome.state,
                    outcome.code,
                    outcome.text,
                    self._now(),
                    outcome.relay,
                    issue,
                    email,
                )
            )

    def mark_failed(self, issue: str, email: str, reason: str) -> None:
        """A person whose message could not be made: failed, with the reason, at once."""
        with self._lock:
            self._commit_answers()
            self._write(
                "UPDATE deliveries SET state = 'failed', code = NULL, detail = ?, updated = ?"
                " WHERE issue = ? AND email = ?",
                (reason, now(), issue, email),
            )

    def finish(self, send_id: int, *, interrupted: bool) -> SendRecord:
        with self._lock:
            self._commit_answers()
            counts = dict(
                self._db.execute(
                    "SELECT state, COUNT(*) FROM deliveries WHERE send_id = ? GROUP BY state",
                    (send_id,),
                ).fetchall()
            )
            self._write(
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

    def relay_sent(self, relay: str, since: str) -> list[str]:
        """When each message that ``relay`` took was recorded sent, after ``since`` (an
        ISO time in UTC, as ``now()`` writes it), oldest first: the daily quota's
        memory, across runs and issues."""
        with self._lock:
            self._commit_answers()
            rows = self._db.execute(
                "SELECT updated FROM deliveries WHERE relay = ? AND state = 'sent'"
                " AND updated > ? ORDER BY updated",
                (relay, since),
            ).fetchall()
        return [str(at) for (at,) in rows]

    # -- reading -------------------------------------------------------------
    def deliveries(self, issue: str) -> list[Delivery]:
        with self._lock:
            self._commit_answers()
            rows = self._db.execute(
                "SELECT issue, email, lists, message_id, state, code, detail, attempts, updated,"
                " address FROM deliveries WHERE issue = ? ORDER BY rowid",
                (issue,),
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def sends(self) -> list[SendRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_SEND_COLUMNS} FROM sends ORDER BY id").fetchall()
        return [_send_record(r) for r in rows]

    # -- suppressions, bounces, tokens, the inbox's memory ------------------------
    def suppress(self, entry: Suppression) -> bool:
        """Record someone not to send to; False when they already were (the first reason stays)."""
        with self._lock:
            cur = self._write(
                "INSERT OR IGNORE INTO suppressions (email, lists, reason, code, detail, issue,"
                " source, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.email,
                    entry.lists,
                    entry.reason,
                    entry.code,
                    entry.detail,
                    entry.issue,
                    entry.source,
                    entry.at or now(),
                ),
            )
            return cur.rowcount == 1

    def unsuppress(self, email: str) -> int:
        """Lift every suppression of an address key; how many there were. Its soft bounces
        are forgotten too, or the next one would suppress the address again at once."""
        with self._lock:
            self._write("DELETE FROM bounces WHERE email = ? AND kind = 'soft'", (email,))
            return self._write("DELETE FROM suppressions WHERE email = ?", (email,)).rowcount

    def suppressions(self) -> list[Suppression]:
        with self._lock:
            rows = self._db.execute(
                "SELECT email, lists, reason, code, detail, issue, source, at FROM suppressions"
                " ORDER BY at, email"
            ).fetchall()
        return [Suppression(*row) for row in rows]

    def record_bounce(
        self, email: str, issue: str, kind: str, code: str, detail: str, source: str
    ) -> int:
        """Note a bounce; how many soft ones this address has had, on different issues."""
        with self._lock:
            self._write(
                "INSERT INTO bounces (email, issue, kind, code, detail, source, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (email, issue, kind, code, detail, source, now()),
            )
            (n,) = self._db.execute(
                "SELECT COUNT(DISTINCT issue) FROM bounces WHERE email = ? AND kind = 'soft'",
                (email,),
            ).fetchone()
        return int(n)

    def bounced(self, issue: str) -> dict[str, str]:
        """Address key -> kind of the last bounce, for one issue."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email, kind FROM bounces WHERE issue = ? ORDER BY id", (issue,)
            ).fetchall()
        return dict(rows)

    def save_tokens(self, tokens: Iterable[TokenRecord]) -> None:
        stamp = now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO tokens (token, email, lists, issue, created)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(t.token, t.email, t.lists, t.issue, stamp) for t in tokens],
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def token(self, token: str) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT token, email, lists, issue FROM tokens WHERE token = ?", (token,)
            ).fetchone()
        return TokenRecord(*row) if row else None

    def seen(self, key: str) -> bool:
        """Whether the inbox already read this mail."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM inbox_seen WHERE key = ?", (key,)).fetchone()
        return row is not None

    def mark_seen(self, key: str, what: str) -> None:
        with self._lock:
            self._write(
                "INSERT OR IGNORE INTO inbox_seen (key, what, at) VALUES (?, ?, ?)",
                (key, what, now()),
            )

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
            self._write(
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


class _Tally:
    """A snapshot's people sorted as they are read: new rows, rows to make pending again."""

    def __init__(
        self,
        known: dict[str, tuple[DeliveryState, int]],
        eligible: Eligible,
        renew: _Renew | None,
        stamp: str,
    ) -> None:
        self.known, self.eligible, self.renew, self.stamp = known, eligible, renew, stamp
        self.already = self.failed = self.pending = 0
        self.unknown: list[str] = []
        self.again: list[tuple[object, ...]] = []  # UPDATE arguments

    def new_rows(self, issue: str, people: Iterable[Planned]) -> Iterator[tuple[object, ...]]:
        """INSERT arguments for the people the issue has no row for; the others noted."""
        for p in people:
            row = self.known.get(p.email)
            if row is None:
                yield (issue, p.email, p.address or p.email, p.lists, p.message_id, self.stamp)
                continue
            state, generation = row
            again = self.eligible(state)
            if state == "sending":
                self.unknown.append(p.email)
            elif state == "sent" and not again:
                self.already += 1
            elif state == "failed" and not again:
                self.failed += 1
            if state == "pending" or again:
                self.pending += 1
            if again and state != "pending":
                message_id = None
                if state == "sent" and self.renew is not None:
                    generation += 1
                    message_id = self.renew(p, generation)
                self.again.append((p.lists, self.stamp, generation, message_id, issue, p.email))


class _Mark:
    """One connection's ``sending`` mark, waiting for the group commit that holds it."""

    __slots__ = ("args", "claimed", "done", "error", "woken")

    def __init__(self, args: tuple[object, ...]) -> None:
        self.args = args
        self.claimed = False
        self.done = False
        self.error: BaseException | None = None
        self.woken = threading.Event()


class _Heartbeat:
    """Renews a hold from its own thread and connection, so a live send is never taken over."""

    def __init__(self, path: Path, holder: Holder, *, interval: float) -> None:
        self.holder = holder
        self._path = path
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, timeout=30)
        try:
            while not self._stopped.wait(self._interval):
                try:
                    with db:
                        db.execute(
                            "UPDATE holds SET heartbeat = ? WHERE issue = ? AND token = ?",
                            (time.time(), self.holder.issue, self.holder.token),
                        )
                except sqlite3.Error:
                    continue  # the next beat tries again; a stale hold is all it risks
        finally:
            db.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


def _stale(holder: Holder, after: float) -> bool:
    if time.time() - holder.heartbeat > after:
        return True
    if holder.host == socket.gethostname():
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or "full" in str(exc)


def _connect(path: Path) -> sqlite3.Connection:
    """The ledger's connection: worker threads report outcomes on it (one lock, short
    transactions), in WAL mode."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: a 'sent' row survives power loss, so it is never sent twice.
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


_SENDING = (
    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, send_id = ?,"
    " updated = ? WHERE issue = ? AND email = ? AND (state = 'pending' OR send_id = ?)"
)
_DONE = (
    "UPDATE deliveries SET state = ?, code = ?, detail = ?, updated = ?, relay = ? "
    "WHERE issue = ? AND email = ?"
)

_SEND_COLUMNS = (
    "id, issue, title, issue_date, lists, transport, started, finished, sent, failed,"
    " deferred, interrupted, scope, file"
)


def _send_record(row: tuple[object, ...]) -> SendRecord:
    values = list(row)
    values[4] = tuple(x for x in str(values[4]).split(",") if x)
    values[11] = bool(values[11])
    return SendRecord(*values)  # type: ignore[arg-type]
