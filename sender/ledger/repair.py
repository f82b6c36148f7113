"""A damaged ledger: say what is wrong, and save what can be read into a new one.

Never silently start afresh: an empty ledger would send everyone the issue
again. Recovery uses SQLite's own ``.recover`` (the ``sqlite3`` program)
when it is installed, and otherwise copies table by table, row by row, what
can still be read. The damaged file is always kept beside the new one.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .schema import migrate

_TABLES = ("sends", "deliveries", "test_sends", "issues", "holds")


@dataclass(frozen=True)
class Health:
    ok: bool
    problems: list[str]  # SQLite's own words, first few
    rows: dict[str, int]  # per table, what could be counted


@dataclass(frozen=True)
class Recovered:
    damaged: Path  # where the damaged file now is
    rows: dict[str, int]  # per table, rows saved into the new ledger
    how: str  # "sqlite3 .recover" or "row by row"


def check(path: Path) -> Health:
    """SQLite's integrity check of the file, without changing it."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return Health(False, [str(exc)], {})
    try:
        try:
            found = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
        except sqlite3.DatabaseError as exc:
            return Health(False, [str(exc)], {})
        rows: dict[str, int] = {}
        for table in _TABLES:
            try:
                rows[table] = int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            except sqlite3.DatabaseError:
                continue
        ok = found == ["ok"]
        return Health(ok, [] if ok else found, rows)
    finally:
        db.close()


def recover(path: Path) -> Recovered:
    """Move the damaged file aside and build a new ledger at ``path`` from what can be read.

    Raises ValueError when nothing at all could be read (the file is left
    where it was): the user must decide, not the program.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    fresh = path.with_name(f"{path.name}.recovering-{stamp}")
    how = "sqlite3 .recover" if _recover_with_cli(path, fresh) else "row by row"
    if how == "row by row":
        fresh.unlink(missing_ok=True)
        _copy_rows(path, fresh)
    db = sqlite3.connect(fresh, isolation_level=None)
    try:
        rows = {t: _count(db, t) for t in _TABLES}
        if not any(rows.get(t) for t in ("sends", "deliveries")):
            raise ValueError(
                f"nothing could be read from {path}: it is not a ledger, or is damaged beyond "
                "repair. It was left as it is."
            )
        migrate(db)
    except BaseException:
        db.close()
        fresh.unlink(missing_ok=True)
        raise
    db.close()
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.rename(Path(f"{damaged}{suffix}"))
    path.rename(damaged)
    fresh.rename(path)
    path.chmod(0o600)
    return Recovered(damaged, rows, how)


def _recover_with_cli(path: Path, fresh: Path) -> bool:
    program = shutil.which("sqlite3")
    if program is None:
        return False
    try:
        dump = subprocess.run(
            [program, str(path), ".recover"], capture_output=True, check=False, timeout=600
        )
        if dump.returncode != 0 or not dump.stdout:
            return False
        load = subprocess.run(
            [program, str(fresh)], input=dump.stdout, capture_output=True, check=False, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return load.returncode == 0


def _copy_rows(path: Path, fresh: Path) -> None:
    new = sqlite3.connect(fresh, isolation_level=None)
    try:
        migrate(new)
        try:
            old = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error:
            return
        try:
            for table in _TABLES:
                _copy_table(old, new, table)
        finally:
            old.close()
    finally:
        new.close()


def _copy_table(old: sqlite3.Connection, new: sqlite3.Connection, table: str) -> None:
    try:
        columns = [r[1] for r in old.execute(f"PRAGMA table_info({table})")]
        wanted = {r[1] for r in new.execute(f"PRAGMA table_info({table})")}
        names = [c for c in columns if c in wanted]
        if not names:
            return
        cursor = old.execute(f"SELECT {', '.join(names)} FROM {table}")
    except sqlite3.DatabaseError:
        return
    marks = ", ".join("?" for _ in names)
    insert = f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({marks})"
    while True:
        try:
            row = cursor.fetchone()
        except sqlite3.DatabaseError:
            return  # the rest of this table is past the damage
        if row is None:
            return
        new.execute(insert, row)


def _count(db: sqlite3.Connection, table: str) -> int:
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.DatabaseError:
        return 0
