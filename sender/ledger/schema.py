"""The SQLite ledger's tables, and the steps that bring an older file up to date.

``PRAGMA user_version`` says which steps a file has had; each runs once, in
one transaction, when a newer program first opens it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..recipient import address_key
from ..transports.base import DELIVERY_STATES

VERSION = 4
REHEARSAL = "#rehearsal"  # suffix of the issue column for outbox rehearsals

_STATES = ", ".join(f"'{s}'" for s in DELIVERY_STATES)

# Version 1: the tables as first shipped (created by every version, so a new
# file is brought forward by the same steps as an old one).
_V1 = f"""
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
    state TEXT NOT NULL CHECK (state IN ({_STATES})),
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
"""

# Whose state wins when two rows turn out to be one person: what is known to
# have gone out beats what may have, which beats what did not.
_RANK = {"pending": 0, "deferred": 1, "failed": 2, "unknown": 3, "sending": 4, "sent": 5}


_V2_TABLES = (
    "ALTER TABLE sends ADD COLUMN scope TEXT NOT NULL DEFAULT 'delivery'",
    "ALTER TABLE sends ADD COLUMN file TEXT NOT NULL DEFAULT ''",
    # Rebuilt, not altered: the CHECK on state gains 'unknown'.
    f"""CREATE TABLE deliveries_v2 (
        issue TEXT NOT NULL,
        email TEXT NOT NULL,
        lists TEXT NOT NULL,
        message_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ({_STATES})),
        code INTEGER,
        detail TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        send_id INTEGER REFERENCES sends (id),
        updated TEXT NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        generation INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (issue, email)
    )""",
    """INSERT INTO deliveries_v2 (issue, email, lists, message_id, state, code, detail,
        attempts, send_id, updated)
    SELECT issue, email, lists, message_id, state, code, detail, attempts, send_id, updated
    FROM deliveries ORDER BY rowid""",
    "DROP TABLE deliveries",
    "ALTER TABLE deliveries_v2 RENAME TO deliveries",
    """CREATE TABLE issues (
        key TEXT PRIMARY KEY,
        file TEXT NOT NULL,
        date TEXT NOT NULL,
        title TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    )""",
    """CREATE TABLE holds (
        issue TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        since TEXT NOT NULL,
        heartbeat REAL NOT NULL,
        token TEXT NOT NULL
    )""",
)


def _to_v2(db: sqlite3.Connection) -> None:
    """One person, one row; issues known by what they are; one sender at a time."""
    # One statement at a time: executescript would commit the step half-way.
    for statement in _V2_TABLES:
        db.execute(statement)
    # Copies saved to the outbox were rehearsals, not deliveries: they must not
    # stop a later send through the mail server.
    db.execute(
        "UPDATE sends SET scope = 'rehearsal' WHERE transport = 'eml'",
    )
    db.execute(
        "UPDATE deliveries SET issue = issue || ? WHERE send_id IN"
        " (SELECT id FROM sends WHERE scope = 'rehearsal')",
        (REHEARSAL,),
    )
    # Priya.Shah@ and priya.shah@ are one person: merge their rows, keeping the
    # most advanced state, so nobody gets an issue twice for a capital letter.
    rows = db.execute(
        "SELECT rowid, issue, email, state, attempts FROM deliveries ORDER BY rowid"
    ).fetchall()
    groups: dict[tuple[str, str], list[tuple[int, str, str, int]]] = {}
    for rowid, issue, email, state, attempts in rows:
        groups.setdefault((issue, address_key(email)), []).append((rowid, email, state, attempts))
    for (_issue, key), members in groups.items():
        best = max(members, key=lambda m: (_RANK.get(m[2], 0), -m[0]))
        others = [m for m in members if m is not best]
        if others:
            db.executemany("DELETE FROM deliveries WHERE rowid = ?", [(m[0],) for m in others])
        db.execute(
            "UPDATE deliveries SET email = ?, address = ?, attempts = ? WHERE rowid = ?",
            (key, best[1], sum(m[3] for m in members), best[0]),
        )
    # Every issue sent so far is known by the name it was sent under.
    db.execute(
        "INSERT OR IGNORE INTO issues (key, file, date, title, created, updated)"
        " SELECT issue, '', issue_date, title, MIN(started), MAX(started) FROM sends"
        " GROUP BY issue"
    )


_V3 = (
    # Which relay took each message: the daily quota is counted per relay account.
    "ALTER TABLE deliveries ADD COLUMN relay TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX deliveries_relay_sent ON deliveries (relay, updated) WHERE state = 'sent'",
    # Who must not be sent to, and why: a hard bounce, repeated soft bounces, an
    # unsubscribe (for the lists in its token; '' = every list), or by hand.
    """CREATE TABLE suppressions (
        email TEXT NOT NULL,
        lists TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL,
        code TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        issue TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL,
        PRIMARY KEY (email, lists)
    )""",
    # Every bounce read, once: soft ones suppress after several on different issues.
    """CREATE TABLE bounces (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL,
        issue TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft')),
        code TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL
    )""",
    # Mail already read from the bounce and unsubscribe mailbox: reading is idempotent.
    "CREATE TABLE inbox_seen (key TEXT PRIMARY KEY, what TEXT NOT NULL, at TEXT NOT NULL)",
)


def _to_v3(db: sqlite3.Connection) -> None:
    """Relays, suppressions, bounces and the inbox's memory."""
    for statement in _V3:
        db.execute(statement)


def _to_v4(db: sqlite3.Connection) -> None:
    """Each person's private token: it names them and their lists in unsubscribe links and
    bounce addresses, so neither carries an email address."""
    db.execute(
        """CREATE TABLE tokens (
            token TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            lists TEXT NOT NULL,
            issue TEXT NOT NULL,
            created TEXT NOT NULL
        )"""
    )


STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _to_v2, 3: _to_v3, 4: _to_v4}


def migrate(db: sqlite3.Connection) -> list[int]:
    """Bring the file to VERSION; the steps it took. Raises if the file is newer."""
    db.executescript(_V1)
    version = _version(db)
    if version > VERSION:
        raise RuntimeError(f"version {version}")
    done: list[int] = []
    for step in range(max(version, 1) + 1, VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the lock: another program opening the same new file
            # (two sends started together) may have taken this step while we waited.
            took = _version(db) < step
            if took:
                STEPS[step](db)
                db.execute(f"PRAGMA user_version = {step}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if took:
            done.append(step)
    return done


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])
