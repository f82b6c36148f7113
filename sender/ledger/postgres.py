"""The ledger in a PostgreSQL database, shared by several senders, machines and the team.

The same promises as the SQLite ledger (``sqlite.py``), kept the same way:
a send snapshots its people as ``pending``; a connection's ``sending`` mark
is committed, with the answers received since the last commit (its own
previous one among them), before its message goes, so a stop anywhere
leaves at most one message per connection whose answer is unknown. The
hold is a lease renewed by a heartbeat, on the database's clock.

What several senders of one send need on top (``newsletter send --workers``,
``newsletter worker``): a run's people are queued for it (``enqueue``);
each worker, registered with its own lease (``join``), claims small batches
with ``SELECT … FOR UPDATE SKIP LOCKED`` (``claim``), so no two workers ever
hold the same person; a worker whose lease ran out (its heartbeat is old,
or on this machine its process is gone) has its claimed people put back
(``reap``): those it had handed to the server are sent again and reported
as unknown, at most one per connection of that worker. The relay's pace
and daily quota are counted here too, one budget per relay for everyone.

The password is read from an environment variable (``[send]
ledger_password_env``), never from the address and never shown; TLS is
what libpq does with the address's ``sslmode`` (``verify-full`` checks the
server's certificate and name).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..clock import Clock, stamp
from ..transports.base import DELIVERY_STATES, Outcome
from .errors import IssueHeld, LedgerError
from .location import shown
from .pg_schema import VERSION, TooNew, migrate
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
from .sqlite import _SEND_COLUMNS, _send_record, now

if TYPE_CHECKING:
    import psycopg

PASSWORD_ENV = "NEWSLETTER_LEDGER_PASSWORD"
_Renew = Callable[[Planned, int], str]
_Args = tuple[object, ...] | Callable[[], tuple[object, ...]]  # a heartbeat's, or made each beat
_NOW = "extract(epoch from clock_timestamp())::float8"  # the database's clock, in seconds


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise LedgerError(
            "[send] ledger names a PostgreSQL database, which needs the psycopg library "
            f"({exc}). Install it with: pip install 'newsletter-sender[postgresql]' "
            "(it uses libpq: on Debian, apt-get install libpq5)."
        ) from None
    return psycopg


def has_ledger(url: str, password_env: str = PASSWORD_ENV) -> bool:
    """Whether the database at ``url`` holds a ledger's tables yet; nothing is made."""
    pg = _psycopg()
    args = _connect_args(password_env)
    try:
        with pg.connect(url, **args) as db:
            row = db.execute("SELECT to_regclass('ledger_schema') IS NOT NULL").fetchone()
    except pg.Error as exc:
        raise _failed(shown(url), password_env, exc) from None
    return bool(row and row[0])


def _connect_args(password_env: str) -> dict[str, Any]:
    """How the program connects; the password from the environment, never shown."""
    args: dict[str, Any] = {
        "autocommit": True,
        "application_name": "newsletter",
        "connect_timeout": 15,
    }
    password = os.environ.get(password_env) or None
    if password is not None:
        args["password"] = password
    return args


def _failed(where: str, password_env: str, exc: BaseException) -> LedgerError:
    said = " ".join(str(exc).split()) or type(exc).__name__
    hint = ""
    if "password" in said:
        hint = (
            f" The password is read from the environment variable {password_env}: "
            "set it where this command runs (never in newsletter.toml)."
        )
    return LedgerError(
        f"The ledger database {where} cannot be used: {said}.{hint} Nothing more was "
        "sent; what was recorded stands. Run the same command again once it answers: "
        "nobody who got the issue gets it again."
    )


@dataclass(frozen=True)
class WorkerRecord:
    """One worker of a send: who, where, how fast, and whether its lease is alive."""

    id: str
    issue: str
    send_id: int
    host: str
    pid: int
    connections: int
    since: str
    heartbeat: float  # the database's clock, seconds since the epoch
    state: str  # running, done, gone (its lease ran out and others took its people)
    sent: int
    unknown: int  # people it had handed over when it was lost: sent again
    rate: float  # messages a second, lately
    age: float = 0.0  # seconds since its last heartbeat, when read

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"


@dataclass(frozen=True)
class Reaped:
    """A worker whose lease ran out, and the people it had handed to the server."""

    worker: WorkerRecord
    unknown: list[str]


class PostgresLedger:
    """The ledger in PostgreSQL: one connection, a lock, short transactions."""

    def __init__(
        self,
        url: str,
        *,
        password_env: str = PASSWORD_ENV,
        clock: Clock | None = None,
    ) -> None:
        self.url = url
        self.where = shown(url)
        self._pg = _psycopg()
        self._now = now if clock is None else lambda: stamp(clock.now())
        self._password_env = password_env
        # Kept for the heartbeat's own connection; never shown (see __repr__).
        self.__connect_args = _connect_args(password_env)
        self._db = self._connect()
        try:
            with self._db.transaction():
                migrate(self._db.cursor())
        except TooNew as exc:
            self._db.close()
            raise LedgerError(
                f"The ledger database {self.where} was set up by a newer version of newsletter "
                f"(schema {exc.version}; this one knows {VERSION}). Nothing was sent or changed. "
                "Upgrade newsletter on this computer to use it."
            ) from None
        except self._pg.Error as exc:
            self._db.close()
            raise self._failed(exc) from None
        self._lock = threading.Lock()
        # Each connection's (thread's) answers, committed with its own next mark.
        self._lanes: dict[int, _Lane] = {}
        self._lanes_lock = threading.Lock()
        self._spare: list[Any] = []  # connections for the marks, one per mark at a time
        self._taken_quota: set[str] = set()  # relays this sender took quota from
        self.sent = 0  # messages recorded sent by this sender (a worker's count)
        self._beat: _Heartbeat | None = None
        self._hold_token: str | None = None
        # This sender's name in the database: a worker's id once it joins a run.
        self.me = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self.worker: str | None = None

    def __repr__(self) -> str:
        return f"PostgresLedger({self.where})"

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return self._pg.connect(self.url, **self.__connect_args)  # type: ignore[no-any-return]
        except self._pg.Error as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: BaseException) -> LedgerError:
        return _failed(self.where, self._password_env, exc)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """A database that stops answering is a LedgerError, said for the comms officer."""
        try:
            yield
        except self._pg.Error as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        with self._lock:
            if self._beat is not None:
                self._beat.stop()
                self._beat = None
            try:
                with self._errors():
                    self._commit_answers()
                    if self.worker is None:
                        self._db.execute("DELETE FROM quota_inflight WHERE worker = %s", (self.me,))
            finally:
                self._db.close()
                for db in self._spare:
                    db.close()
                self._spare = []

    # -- answers, committed with the next mark ----------------------------------------
    def _lane(self) -> _Lane:
        """This thread's answers: one SMTP connection's, as the pool runs one per thread."""
        me = threading.get_ident()
        with self._lanes_lock:
            lane = self._lanes.get(me)
            if lane is None:
                lane = self._lanes[me] = _Lane()
            return lane

    def _mark(self, mark: tuple[object, ...]) -> bool:
        """Commit this connection's answers since its last mark, and the mark, on a
        database connection of its own: the connections' commits overlap, and
        PostgreSQL writes overlapping commits with one flush of its log. Returns whether
        the mark claimed its row."""
        lane = self._lane()
        with lane.lock:
            answers, lane.answers = lane.answers, []
            with self._lanes_lock:
                db = self._spare.pop() if self._spare else None
            try:
                if db is None:
                    db = self._connect()
                with db.transaction():
                    cur = db.cursor()
                    if answers:
                        self._write_answers(cur, answers)
                    cur.execute(_SENDING, mark)
                    claimed = bool(cur.rowcount == 1)
            except BaseException:
                lane.answers[:0] = answers
                if db is not None:
                    db.close()
                raise
            with self._lanes_lock:
                self._spare.append(db)
        return claimed

    def _commit_answers(self) -> None:
        """Commit every connection's answers not yet written (hold the lock): before a
        read, and at the end. Each lane is held meanwhile, so no connection's next mark
        can be written before its previous answer."""
        with self._lanes_lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.lock.acquire()
        try:
            answers = [a for lane in lanes for a in lane.answers]
            if not answers:
                return
            with self._db.transaction():
                self._write_answers(self._db.cursor(), answers)
            for lane in lanes:
                lane.answers = []
        finally:
            for lane in lanes:
                lane.lock.release()

    def _write_answers(self, cur: Any, answers: list[tuple[object, ...]]) -> None:
        cur.executemany(_DONE, answers)
        # The relay's messages in flight come down as their answers are written.
        relays: dict[str, int] = {}
        for a in answers:
            if a[4] in self._taken_quota:
                relays[str(a[4])] = relays.get(str(a[4]), 0) + 1
        for relay, n in relays.items():
            cur.execute(
                "UPDATE quota_inflight SET n = GREATEST(n - %s, 0) WHERE relay = %s"
                " AND worker = %s",
                (n, relay, self.worker or self.me),
            )

    @property
    def unwritten(self) -> int:
        with self._lanes_lock:
            return sum(len(lane.answers) for lane in self._lanes.values())

    def commit(self) -> None:
        """Write the answers received so far (a worker waiting for more people does)."""
        with self._lock, self._errors():
            self._commit_answers()

    # -- issues ------------------------------------------------------------------------
    def issues(self) -> list[IssueRecord]:
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT key, file, date, title FROM issues ORDER BY created, seq"
            ).fetchall()
        return [IssueRecord(*row) for row in rows]

    def save_issue(self, record: IssueRecord) -> None:
        at = now()
        with self._lock, self._errors():
            self._db.execute(
                "INSERT INTO issues (key, file, date, title, created, updated)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET"
                " file = excluded.file, date = excluded.date, title = excluded.title,"
                " updated = excluded.updated",
                (record.key, record.file, record.date, record.title, at, at),
            )

    def unfinished(self, issue: str) -> int:
        with self._lock, self._errors():
            self._commit_answers()
            row = self._db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE issue = %s"
                " AND state IN ('pending', 'sending', 'deferred', 'unknown')",
                (issue,),
            ).fetchone()
        return int(row[0]) if row else 0

    # -- one send per issue ----------------------------------------------------------------
    def hold(self, issue: str, *, stale_after: float = 30.0) -> Holder | None:
        """Take the issue for this process; the holder it took over from, if any.

        Raises IssueHeld while a live sender has it: its heartbeat is fresh, or
        a worker of its send still is (workers outlive a send that started them
        only until their own lease runs out)."""
        host, pid, token = socket.gethostname(), os.getpid(), os.urandom(16).hex()
        with self._lock, self._errors(), self._db.transaction():
            cur = self._db.cursor()
            cur.execute("LOCK TABLE holds IN SHARE ROW EXCLUSIVE MODE")
            clock = float(cur.execute(f"SELECT {_NOW}").fetchone()[0])  # type: ignore[index]
            row = cur.execute(
                "SELECT issue, host, pid, since, heartbeat, token, send_id FROM holds"
                " WHERE issue = %s",
                (issue,),
            ).fetchone()
            previous = Holder(*row[:6]) if row is not None else None
            if row is not None and previous is not None:
                live_workers = row[6] is not None and bool(
                    cur.execute(
                        "SELECT 1 FROM workers WHERE send_id = %s AND state = 'running'"
                        f" AND heartbeat > {_NOW} - %s LIMIT 1",
                        (row[6], stale_after),
                    ).fetchone()
                )
                if live_workers or not _stale(previous, clock, stale_after):
                    raise IssueHeld(
                        f"This issue is being sent right now by {previous.describe()}. "
                        "Two sends at once would send some people the issue twice, so this one "
                        "did not start. Wait for that send to finish (newsletter status shows "
                        "how far it has got), or stop it first; 'newsletter worker' joins it "
                        "from another computer.",
                        previous,
                    )
            cur.execute(
                "INSERT INTO holds (issue, host, pid, since, heartbeat, token, send_id)"
                f" VALUES (%s, %s, %s, %s, {_NOW}, %s, NULL) ON CONFLICT (issue) DO UPDATE SET"
                " host = excluded.host, pid = excluded.pid, since = excluded.since,"
                " heartbeat = excluded.heartbeat, token = excluded.token, send_id = NULL",
                (issue, host, pid, now(), token),
            )
        self._hold_token = token
        self._start_beat(
            "UPDATE holds SET heartbeat = " + _NOW + " WHERE issue = %s AND token = %s",
            (issue, token),
            interval=max(stale_after / 6, 0.05),
        )
        return previous

    def _start_beat(self, sql: str, args: _Args, *, interval: float) -> None:
        if self._beat is None:
            self._beat = _Heartbeat(self._connect, interval)
        self._beat.add(sql, args)

    def release(self, issue: str) -> None:
        with self._lock:
            token, self._hold_token = self._hold_token, None
            if self._beat is not None:
                self._beat.stop()
                self._beat = None
            if token is not None:
                with self._errors():
                    self._db.execute(
                        "DELETE FROM holds WHERE issue = %s AND token = %s", (issue, token)
                    )

    def holders(self) -> list[Holder]:
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT issue, host, pid, since, heartbeat, token FROM holds ORDER BY issue"
            ).fetchall()
        return [Holder(*row) for row in rows]

    # -- a send --------------------------------------------------------------------------
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
        with self._lock, self._errors():
            row = self._db.execute(
                "INSERT INTO sends (issue, title, issue_date, lists, transport, started, scope,"
                " file) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (issue, title, issue_date, ",".join(lists), transport, now(), scope, file),
            ).fetchone()
        return int(row[0]) if row else 0

    def snapshot(
        self,
        issue: str,
        people: Iterable[Planned],
        eligible: Eligible,
        *,
        renew: _Renew | None = None,
    ) -> Snapshot:
        """Record everyone as pending before the first message, in one transaction, as
        ``SqliteLedger.snapshot`` does, but set by set: the people are copied into a
        table of the transaction's own and compared with the issue's rows in the
        database, a handful of statements whatever their number. Claims left by
        workers of an earlier run are let go."""
        at = now()
        again = [s for s in DELIVERY_STATES if s != "pending" and eligible(s)]
        with self._lock, self._errors():
            self._commit_answers()
            with self._db.transaction():
                cur = self._db.cursor()
                cur.execute(
                    "CREATE TEMP TABLE snap (ord INTEGER, email TEXT, address TEXT, lists TEXT,"
                    " message_id TEXT) ON COMMIT DROP"
                )
                planned: dict[str, Planned] = {}
                with cur.copy(
                    "COPY snap (ord, email, address, lists, message_id) FROM STDIN"
                ) as cp:
                    for n, p in enumerate(people):
                        planned[p.email] = p
                        cp.write_row((n, p.email, p.address or p.email, p.lists, p.message_id))
                found = cur.execute(
                    "SELECT d.state, s.email, d.generation FROM snap s JOIN deliveries d"
                    " ON d.issue = %s AND d.email = s.email ORDER BY s.ord",
                    (issue,),
                ).fetchall()
                states = Counter(str(state) for state, _, _ in found)
                if renew is not None and "sent" in again:
                    cur.executemany(
                        "UPDATE deliveries SET generation = %s, message_id = %s"
                        " WHERE issue = %s AND email = %s",
                        [
                            (g + 1, renew(planned[e], g + 1), issue, e)
                            for state, e, g in found
                            if state == "sent"
                        ],
                    )
                cur.execute(
                    "UPDATE deliveries d SET state = 'pending', lists = s.lists, updated = %s"
                    " FROM snap s WHERE d.issue = %s AND d.email = s.email"
                    " AND d.state = ANY(%s)",
                    (at, issue, again),
                )
                new = cur.execute(
                    "INSERT INTO deliveries (issue, email, address, lists, message_id, state,"
                    " updated) SELECT %s, email, address, lists, message_id, 'pending', %s"
                    " FROM snap ORDER BY ord ON CONFLICT (issue, email) DO NOTHING",
                    (issue, at),
                ).rowcount
                cur.execute(
                    "UPDATE deliveries SET worker = NULL, queued = NULL WHERE issue = %s"
                    " AND state <> 'sending' AND (worker IS NOT NULL OR queued IS NOT NULL)",
                    (issue,),
                )
        unknown = [str(e) for state, e, _ in found if state == "sending"]
        left = {s: n for s, n in states.items() if s not in again}
        pending = states["pending"] + sum(states[s] for s in again)
        return Snapshot(new, left.get("sent", 0), unknown, left.get("failed", 0), new + pending)

    def to_send(self, issue: str, emails: Iterable[str], limit: int | None = None) -> list[str]:
        return [e for e, _ in self._pending(issue, list(emails), limit)]

    def queue(
        self, issue: str, emails: Iterable[str], limit: int | None = None
    ) -> list[tuple[str, str]]:
        return self._pending(issue, list(emails), limit)

    def _pending(self, issue: str, emails: list[str], limit: int | None) -> list[tuple[str, str]]:
        with self._lock, self._errors():
            self._commit_answers()
            ids = dict(
                self._db.execute(
                    "SELECT email, message_id FROM deliveries WHERE issue = %s"
                    " AND state = 'pending' AND email = ANY(%s)",
                    (issue, emails),
                ).fetchall()
            )
        chosen = [(e, ids[e]) for e in emails if e in ids]
        return chosen if limit is None else chosen[:limit]

    def mark_sending(self, issue: str, email: str, send_id: int) -> bool:
        """Claim a person for this send, just before their message goes: False when they
        are no longer pending, or are another worker's (their message must not go)."""
        me = self.worker
        with self._errors():
            return self._mark((send_id, now(), me, issue, email, me, send_id, me))

    def mark_done(self, issue: str, email: str, outcome: Outcome) -> None:
        lane = self._lane()
        answer = (
            outcome.state,
            outcome.code,
            outcome.text.replace("\x00", ""),
            self._now(),
            outcome.relay,
            issue,
            email,
        )
        with lane.lock:
            lane.answers.append(answer)
            if outcome.state == "sent":
                self.sent += 1

    def mark_failed(self, issue: str, email: str, reason: str) -> None:
        with self._lock, self._errors():
            self._commit_answers()
            self._db.execute(
                "UPDATE deliveries SET state = 'failed', code = NULL, detail = %s, updated = %s"
                " WHERE issue = %s AND email = %s",
                (reason, now(), issue, email),
            )

    def finish(self, send_id: int, *, interrupted: bool) -> SendRecord:
        with self._lock, self._errors():
            self._commit_answers()
            counts = dict(
                self._db.execute(
                    "SELECT state, COUNT(*) FROM deliveries WHERE send_id = %s GROUP BY state",
                    (send_id,),
                ).fetchall()
            )
            row = self._db.execute(
                "UPDATE sends SET finished = %s, sent = %s, failed = %s, deferred = %s,"
                f" interrupted = %s WHERE id = %s RETURNING {_SEND_COLUMNS}",
                (
                    now(),
                    counts.get("sent", 0),
                    counts.get("failed", 0),
                    counts.get("deferred", 0),
                    int(interrupted),
                    send_id,
                ),
            ).fetchone()
        assert row is not None
        return _send_record(tuple(row))

    def relay_sent(self, relay: str, since: str) -> list[str]:
        with self._lock, self._errors():
            self._commit_answers()
            rows = self._db.execute(
                "SELECT updated FROM deliveries WHERE relay = %s AND state = 'sent'"
                " AND updated > %s ORDER BY updated",
                (relay, since),
            ).fetchall()
        return [str(at) for (at,) in rows]

    # -- reading ---------------------------------------------------------------------------
    def deliveries(self, issue: str) -> list[Delivery]:
        with self._lock, self._errors():
            self._commit_answers()
            rows = self._db.execute(
                "SELECT issue, email, lists, message_id, state, code, detail, attempts, updated,"
                " address FROM deliveries WHERE issue = %s ORDER BY seq",
                (issue,),
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def sends(self) -> list[SendRecord]:
        with self._lock, self._errors():
            rows = self._db.execute(f"SELECT {_SEND_COLUMNS} FROM sends ORDER BY id").fetchall()
        return [_send_record(tuple(r)) for r in rows]

    # -- suppressions, bounces, tokens, the inbox's memory --------------------------------
    def suppress(self, entry: Suppression) -> bool:
        with self._lock, self._errors():
            cur = self._db.execute(
                "INSERT INTO suppressions (email, lists, reason, code, detail, issue, source, at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
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
        with self._lock, self._errors():
            return self._db.execute("DELETE FROM suppressions WHERE email = %s", (email,)).rowcount

    def suppressions(self) -> list[Suppression]:
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT email, lists, reason, code, detail, issue, source, at FROM suppressions"
                " ORDER BY at, email"
            ).fetchall()
        return [Suppression(*row) for row in rows]

    def record_bounce(
        self, email: str, issue: str, kind: str, code: str, detail: str, source: str
    ) -> int:
        with self._lock, self._errors(), self._db.transaction():
            self._db.execute(
                "INSERT INTO bounces (email, issue, kind, code, detail, source, at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (email, issue, kind, code, detail, source, now()),
            )
            row = self._db.execute(
                "SELECT COUNT(DISTINCT issue) FROM bounces WHERE email = %s AND kind = 'soft'",
                (email,),
            ).fetchone()
        return int(row[0]) if row else 0

    def bounced(self, issue: str) -> dict[str, str]:
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT email, kind FROM bounces WHERE issue = %s ORDER BY id", (issue,)
            ).fetchall()
        return {str(e): str(k) for e, k in rows}

    def save_tokens(self, tokens: Iterable[TokenRecord]) -> None:
        at = now()
        with self._lock, self._errors(), self._db.transaction():
            self._db.cursor().executemany(
                "INSERT INTO tokens (token, email, lists, issue, created)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(t.token, t.email, t.lists, t.issue, at) for t in tokens],
            )

    def token(self, token: str) -> TokenRecord | None:
        with self._lock, self._errors():
            row = self._db.execute(
                "SELECT token, email, lists, issue FROM tokens WHERE token = %s", (token,)
            ).fetchone()
        return TokenRecord(*row) if row else None

    def seen(self, key: str) -> bool:
        with self._lock, self._errors():
            row = self._db.execute("SELECT 1 FROM inbox_seen WHERE key = %s", (key,)).fetchone()
        return row is not None

    def mark_seen(self, key: str, what: str) -> None:
        with self._lock, self._errors():
            self._db.execute(
                "INSERT INTO inbox_seen (key, what, at) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
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
        with self._lock, self._errors():
            self._db.execute(
                "INSERT INTO test_sends (issue, email, as_lists, as_recipient, message_id,"
                " state, code, detail, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
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

    # -- several senders of one send ---------------------------------------------------------
    def open_run(self, issue: str, send_id: int, emails: Sequence[str]) -> None:
        """Queue ``emails`` (pending) for run ``send_id`` and let workers join it: the
        hold names the run while it lasts."""
        with self._lock, self._errors(), self._db.transaction():
            self._db.execute(
                "UPDATE deliveries SET queued = %s, worker = NULL WHERE issue = %s"
                " AND state = 'pending' AND email = ANY(%s)",
                (send_id, issue, list(emails)),
            )
            self._db.execute(
                "UPDATE holds SET send_id = %s WHERE issue = %s AND token = %s",
                (send_id, issue, self._hold_token),
            )

    def running(self, issue: str) -> int | None:
        """The run of ``issue`` that workers may join now, if one is held."""
        with self._lock, self._errors():
            row = self._db.execute(
                "SELECT send_id FROM holds WHERE issue = %s AND send_id IS NOT NULL", (issue,)
            ).fetchone()
        return int(row[0]) if row else None

    def send_record(self, send_id: int) -> SendRecord | None:
        with self._lock, self._errors():
            row = self._db.execute(
                f"SELECT {_SEND_COLUMNS} FROM sends WHERE id = %s", (send_id,)
            ).fetchone()
        return _send_record(tuple(row)) if row else None

    def join(
        self, issue: str, send_id: int, connections: int, *, lease: float = 30.0
    ) -> WorkerRecord:
        """Register this process as a worker of run ``send_id``, its lease renewed by a
        heartbeat every ``lease / 6`` seconds."""
        me = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        with self._lock, self._errors():
            row = self._db.execute(
                "INSERT INTO workers (id, issue, send_id, host, pid, connections, since,"
                f" heartbeat) VALUES (%s, %s, %s, %s, %s, %s, %s, {_NOW})"
                f" RETURNING {_WORKER_COLUMNS}",
                (me, issue, send_id, socket.gethostname(), os.getpid(), connections, now()),
            ).fetchone()
        assert row is not None
        self.worker = me
        joined = time.monotonic()

        def counts() -> tuple[object, ...]:  # how many and how fast, for 'status'
            return (self.sent, self.sent / max(time.monotonic() - joined, 1e-3), me)

        self._start_beat(
            "UPDATE workers SET heartbeat = " + _NOW + ", sent = %s, rate = %s"
            " WHERE id = %s AND state = 'running'",
            counts,
            interval=max(lease / 6, 0.05),
        )
        return WorkerRecord(*row)

    def leave(self, *, rate: float = 0.0) -> None:
        """This worker is done: its answers written, the people it claimed and did not
        start let go for others."""
        me = self.worker
        if me is None:
            return
        with self._lock, self._errors():
            self._commit_answers()
            with self._db.transaction():
                self._db.execute(
                    "UPDATE deliveries SET worker = NULL WHERE worker = %s AND state = 'pending'",
                    (me,),
                )
                self._db.execute("DELETE FROM quota_inflight WHERE worker = %s", (me,))
                self._db.execute(
                    "UPDATE workers SET state = 'done', rate = %s, sent = %s WHERE id = %s AND"
                    " state = 'running'",
                    (rate, self.sent, me),
                )

    def claim(self, send_id: int, n: int) -> list[tuple[str, str]]:
        """Up to ``n`` people of run ``send_id`` that nobody has claimed, now this
        worker's: (address key, Message-ID), in the order they were queued."""
        with self._lock, self._errors(), self._db.transaction():
            # A claim lost with the server's power only puts its people back in the queue,
            # where the next claim finds them: no flush to wait for. (A 'sending' mark is
            # the one write that must be on disk before its message goes.)
            self._db.execute("SET LOCAL synchronous_commit = off")
            rows = self._db.execute(
                "UPDATE deliveries d SET worker = %s FROM (SELECT issue, email FROM deliveries"
                " WHERE queued = %s AND state = 'pending' AND worker IS NULL ORDER BY seq"
                " LIMIT %s FOR UPDATE SKIP LOCKED) b WHERE d.issue = b.issue AND d.email = b.email"
                " RETURNING d.seq, d.email, d.message_id",
                (self.worker, send_id, n),
            ).fetchall()
        return [(str(e), str(m)) for _, e, m in sorted(rows)]

    def left(self, send_id: int) -> int:
        """People of the run still pending or in flight with a worker other than this one."""
        with self._lock, self._errors():
            row = self._db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE queued = %s AND (state = 'pending'"
                " OR (state = 'sending' AND worker IS DISTINCT FROM %s))",
                (send_id, self.worker),
            ).fetchone()
        return int(row[0]) if row else 0

    def reap(self, send_id: int, *, stale_after: float = 30.0) -> list[Reaped]:
        """Workers of the run whose lease ran out: their people put back for the others;
        those they had handed over are sent again (their answer is unknown)."""
        host = socket.gethostname()
        found: list[Reaped] = []
        with self._lock, self._errors(), self._db.transaction():
            cur = self._db.cursor()
            rows = cur.execute(
                f"SELECT {_WORKER_COLUMNS}, {_NOW} - heartbeat FROM workers WHERE send_id = %s"
                " AND state = 'running' AND id IS DISTINCT FROM %s FOR UPDATE SKIP LOCKED",
                (send_id, self.worker),
            ).fetchall()
            for row in rows:
                worker = WorkerRecord(*row)
                if not (worker.age > stale_after or (worker.host == host and _gone(worker.pid))):
                    continue
                unknown = [
                    str(e)
                    for (e,) in cur.execute(
                        "UPDATE deliveries SET state = 'pending', worker = NULL, updated = %s"
                        " WHERE worker = %s AND state = 'sending' RETURNING email",
                        (now(), worker.id),
                    ).fetchall()
                ]
                cur.execute(
                    "UPDATE deliveries SET worker = NULL WHERE worker = %s AND state = 'pending'",
                    (worker.id,),
                )
                cur.execute("DELETE FROM quota_inflight WHERE worker = %s", (worker.id,))
                cur.execute(
                    "UPDATE workers SET state = 'gone', unknown = %s WHERE id = %s",
                    (len(unknown), worker.id),
                )
                found.append(Reaped(worker, unknown))
        return found

    def workers(self, send_id: int | None = None) -> list[WorkerRecord]:
        """The workers of a run (every run's when None), with how long since each beat."""
        where, args = ("WHERE send_id = %s", (send_id,)) if send_id is not None else ("", ())
        with self._lock, self._errors():
            rows = self._db.execute(
                f"SELECT {_WORKER_COLUMNS}, {_NOW} - heartbeat FROM workers {where}"
                " ORDER BY since, id",
                args,
            ).fetchall()
        return [WorkerRecord(*row) for row in rows]

    def progress(self, send_id: int) -> dict[str, int]:
        """State -> people of the run, as written so far."""
        with self._lock, self._errors():
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM deliveries WHERE queued = %s GROUP BY state",
                (send_id,),
            ).fetchall()
        return {str(s): int(n) for s, n in rows}

    # -- one budget per relay, for everyone sending through it ------------------------------
    def reserve_slot(
        self, relay: str, interval: float, windows: Sequence[tuple[int, float]]
    ) -> float:
        """The next free slot of ``relay`` for one message: seconds to wait for it.

        ``interval``: seconds between two messages; ``windows``: (at most, seconds)
        caps over any window, as ``RateLimiter`` keeps them, here for every sender."""
        with self._lock, self._errors(), self._db.transaction():
            cur = self._db.cursor()
            # A pace lost with the server's power is harmless: no flush to wait for.
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute(
                "INSERT INTO relay_budget (relay) VALUES (%s) ON CONFLICT DO NOTHING", (relay,)
            )
            row = cur.execute(
                f"SELECT next_at, minute, hour, {_NOW} FROM relay_budget WHERE relay = %s"
                " FOR UPDATE",
                (relay,),
            ).fetchone()
            assert row is not None
            next_at, minute, hour, clock = float(row[0]), list(row[1]), list(row[2]), float(row[3])
            kept = {60.0: minute, 3600.0: hour}
            slot = max(clock, next_at)
            for cap, period in windows:
                times = kept.get(period, [])
                if len(times) >= cap:
                    slot = max(slot, times[-cap] + period)
            for cap, period in windows:
                if period in kept:
                    kept[period] = [*kept[period], slot][-cap:]
            cur.execute(
                "UPDATE relay_budget SET next_at = %s, minute = %s, hour = %s WHERE relay = %s",
                (slot + interval, kept[60.0], kept[3600.0], relay),
            )
        return slot - clock

    def quota_used(self, relay: str, since: str) -> int:
        """Messages ``relay`` took since ``since``, and those on their way through it now."""
        with self._lock, self._errors():
            row = self._db.execute(_QUOTA_USED, (relay, since, relay)).fetchone()
        return int(row[0]) if row else 0

    def quota_take(self, relay: str, per_day: int, since: str) -> bool:
        """Take one message from the relay's quota, for everyone sending through it."""
        self._taken_quota.add(relay)
        with self._lock, self._errors(), self._db.transaction():
            cur = self._db.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"quota:{relay}",))
            row = cur.execute(_QUOTA_USED, (relay, since, relay)).fetchone()
            if row is None or int(row[0]) >= per_day:
                return False
            cur.execute(
                "INSERT INTO quota_inflight (relay, worker, n) VALUES (%s, %s, 1)"
                " ON CONFLICT (relay, worker) DO UPDATE SET n = quota_inflight.n + 1",
                (relay, self.worker or self.me),
            )
        return True

    def quota_give_back(self, relay: str) -> None:
        with self._lock, self._errors():
            self._db.execute(
                "UPDATE quota_inflight SET n = GREATEST(n - 1, 0) WHERE relay = %s AND worker = %s",
                (relay, self.worker or self.me),
            )


class _Lane:
    """One connection's answers waiting for its next mark."""

    __slots__ = ("answers", "lock")

    def __init__(self) -> None:
        self.answers: list[tuple[object, ...]] = []
        self.lock = threading.Lock()


class _Heartbeat:
    """Renews leases (the hold, a worker's) from its own thread and connection."""

    def __init__(self, connect: Callable[[], Any], interval: float) -> None:
        self._connect = connect
        self._interval = interval
        self._beats: list[tuple[str, _Args]] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-heartbeat", daemon=True)
        self._db = connect()
        self._thread.start()

    def add(self, sql: str, args: _Args) -> None:
        with self._lock:
            self._beats.append((sql, args))

    def _run(self) -> None:
        db = self._db
        try:
            # A heartbeat lost with the server's power only makes a lease look older.
            db.execute("SET synchronous_commit = off")
            while not self._stopped.wait(self._interval):
                with self._lock:
                    beats = list(self._beats)
                try:
                    for sql, args in beats:
                        db.execute(sql, args() if callable(args) else args)
                except Exception:
                    # The next beat tries again (on a new connection if need be); a
                    # lease that runs out is all it risks.
                    try:
                        db.close()
                        db = self._connect()
                        db.execute("SET synchronous_commit = off")
                    except Exception:
                        continue  # still unreachable: try on the next beat
        finally:
            db.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _stale(holder: Holder, clock: float, after: float) -> bool:
    """A hold's lease ran out: its heartbeat is old, or its process on this machine is gone."""
    if clock - holder.heartbeat > after:
        return True
    return holder.host == socket.gethostname() and _gone(holder.pid)


_WORKER_COLUMNS = (
    "id, issue, send_id, host, pid, connections, since, heartbeat, state, sent, unknown, rate"
)
_SENDING = (
    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, send_id = %s,"
    " updated = %s, worker = %s WHERE issue = %s AND email = %s AND"
    " ((state = 'pending' AND (worker IS NULL OR worker = %s))"
    " OR (send_id = %s AND state = 'sending' AND worker IS NOT DISTINCT FROM %s))"
)
_DONE = (
    "UPDATE deliveries SET state = %s, code = %s, detail = %s, updated = %s, relay = %s"
    " WHERE issue = %s AND email = %s"
)
# Sent through the relay in the window, and taken from its quota by senders whose answers
# are not written yet (a worker whose lease ran out has its taken messages let go).
_QUOTA_USED = (
    "SELECT (SELECT COUNT(*) FROM deliveries WHERE relay = %s AND state = 'sent'"
    " AND updated > %s) + (SELECT COALESCE(SUM(n), 0) FROM quota_inflight WHERE relay = %s)"
)
