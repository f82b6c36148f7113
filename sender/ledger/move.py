"""``newsletter ledger migrate``: an SQLite ledger's records copied into a PostgreSQL one.

Everything the file knows goes across in one transaction (sends, issues,
every person's state and Message-ID, test sends, suppressions, bounces,
tokens, the inbox's memory), in the order it was written; then each table is
counted on both sides, and the deliveries per issue and state, and the copy
is committed only when they agree. The file is left as it was. A database
that already holds sends is refused: two ledgers are not merged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import LedgerError
from .pg_schema import COPIED
from .postgres import PostgresLedger
from .sqlite import SqliteLedger

# The order rows were written in, for tables whose order the ledger shows.
_ORDER = {"deliveries": "rowid", "issues": "created, rowid"}
# Tables whose ids are kept (deliveries refer to sends by id), with their id column.
_IDS = ("sends", "test_sends", "bounces")


@dataclass(frozen=True)
class Moved:
    rows: dict[str, int]  # table -> rows copied, counted again in the database


def migrate_to(
    path: Path,
    url: str,
    *,
    password_env: str,
    progress: Callable[[str, int], None] | None = None,
) -> Moved:
    """Copy the ledger file at ``path`` into the database at ``url``; the counts.

    Raises LedgerError when the file is not there, a send is running, the
    database already has sends, or the counts do not agree (nothing is kept)."""
    if not path.is_file():
        raise LedgerError(f"There is no ledger file at {path} to copy.")
    SqliteLedger(path).close()  # brought to today's format first, as any command would
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = PostgresLedger(url, password_env=password_env)
    try:
        if source.execute("SELECT COUNT(*) FROM holds").fetchone()[0]:
            raise LedgerError(
                f"A send is running from {path} (or stopped without letting go of its issue): "
                "let it finish, or run it again to the end, before copying the ledger."
            )
        db = target._db
        with target._errors(), db.transaction():
            cur = db.cursor()
            cur.execute("LOCK TABLE sends, deliveries IN EXCLUSIVE MODE")
            (sends,) = cur.execute("SELECT COUNT(*) FROM sends").fetchone() or (0,)
            (rows,) = cur.execute("SELECT COUNT(*) FROM deliveries").fetchone() or (0,)
            if sends or rows:
                raise LedgerError(
                    f"The database {target.where} already holds a ledger ({sends} sends, {rows} "
                    "people): nothing was copied. Copy into a new, empty database."
                )
            counted: dict[str, int] = {}
            for table in COPIED:
                counted[table] = _copy(source, cur, table)
                if progress is not None:
                    progress(table, counted[table])
            for table in _IDS:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" GREATEST((SELECT MAX(id) FROM {table}), 1))"
                )
            _check(source, cur, counted)
        return Moved(counted)
    finally:
        source.close()
        target.close()


def _columns(source: sqlite3.Connection, cur: object, table: str) -> list[str]:
    """The columns both sides have (the database's own order numbers are its own)."""
    mine = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
    theirs = {
        r[0]
        for r in cur.execute(  # type: ignore[attr-defined]
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
            " AND is_generated = 'NEVER' AND identity_generation IS DISTINCT FROM 'ALWAYS'",
            (table,),
        ).fetchall()
    }
    return [c for c in mine if c in theirs]


def _copy(source: sqlite3.Connection, cur: object, table: str) -> int:
    names = _columns(source, cur, table)
    order = _ORDER.get(table, "rowid")
    n = 0
    with cur.copy(  # type: ignore[attr-defined]
        f"COPY {table} ({', '.join(names)}) FROM STDIN"
    ) as copy:
        for row in source.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY {order}"):
            copy.write_row(row)
            n += 1
    return n


def _check(source: sqlite3.Connection, cur: object, counted: dict[str, int]) -> None:
    """Counts on both sides, per table and per issue and state: the copy stands only if
    they agree."""
    problems: list[str] = []
    for table, n in counted.items():
        (there,) = cur.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # type: ignore[attr-defined]
        if there != n:
            problems.append(f"{table}: {n} in the file, {there} in the database")
    query = "SELECT issue, state, COUNT(*) FROM deliveries GROUP BY issue, state"
    here = {(i, s): n for i, s, n in source.execute(query)}
    there = {(i, s): n for i, s, n in cur.execute(query).fetchall()}  # type: ignore[attr-defined]
    if here != there:
        problems.append("the people per issue and state differ")
    if problems:
        raise LedgerError(
            "The copy did not match the file, so nothing was kept: " + "; ".join(problems) + "."
        )
