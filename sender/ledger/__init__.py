"""Who got what, when, and what the server said: one row per issue and person.

``Ledger`` is the small interface the rest of the program uses; ``sqlite``
is the embedded implementation and the default, ``postgres`` the one a team
and several senders share (``[send] ledger = "postgresql://…"``): the same
methods, plus what the workers of one send need (rows claimed with ``SELECT
… FOR UPDATE SKIP LOCKED``, each worker's lease renewed by a heartbeat).
``open_ledger`` and ``read_ledger`` choose between them.

- ``records``: the plain records handed in and out.
- ``schema``: the SQLite tables and the migrations that bring old files forward.
- ``sqlite``: the ledger itself, its hold and its guard on the file.
- ``pg_schema``, ``postgres``: the same in PostgreSQL, and its workers' claims.
- ``move``: ``newsletter ledger migrate``, a file's records copied into a database.
- ``identity``: which issue a file is, whatever it is called now.
- ``errors``: each way the ledger can fail, said with the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..audiences import key_lists
from ..transports.base import DELIVERY_STATES, Outcome
from .errors import IssueHeld, LedgerDamaged, LedgerError, LedgerFull, LedgerGone
from .location import is_database, shown
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
from .schema import REHEARSAL
from .sqlite import SqliteLedger

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "REHEARSAL",
    "STATES",
    "Database",
    "Delivery",
    "Eligible",
    "Holder",
    "IssueHeld",
    "IssueRecord",
    "Ledger",
    "LedgerDamaged",
    "LedgerError",
    "LedgerFull",
    "LedgerGone",
    "LedgerReader",
    "Planned",
    "Scope",
    "SendRecord",
    "Snapshot",
    "SqliteLedger",
    "Suppression",
    "TokenRecord",
    "by_list",
    "iter_failures",
    "ledger_path",
    "open_ledger",
    "read_ledger",
]

STATES = DELIVERY_STATES


class LedgerReader(Protocol):
    """What ``status``, ``history`` and the archive read."""

    def deliveries(self, issue: str) -> list[Delivery]: ...
    def sends(self) -> list[SendRecord]: ...
    def issues(self) -> list[IssueRecord]: ...
    def holders(self) -> list[Holder]: ...
    def unfinished(self, issue: str) -> int: ...
    def suppressions(self) -> list[Suppression]: ...
    def bounced(self, issue: str) -> dict[str, str]: ...
    def token(self, token: str) -> TokenRecord | None: ...


class Ledger(LedgerReader, Protocol):
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
    ) -> int: ...
    def snapshot(
        self,
        issue: str,
        people: Iterable[Planned],
        eligible: Eligible,
        *,
        renew: Callable[[Planned, int], str] | None = None,
    ) -> Snapshot: ...
    def to_send(self, issue: str, emails: Iterable[str], limit: int | None = None) -> list[str]: ...
    def queue(
        self, issue: str, emails: Iterable[str], limit: int | None = None
    ) -> list[tuple[str, str]]: ...
    def mark_sending(self, issue: str, email: str, send_id: int) -> bool: ...
    def mark_done(self, issue: str, email: str, outcome: Outcome) -> None: ...
    def mark_failed(self, issue: str, email: str, reason: str) -> None: ...
    def relay_sent(self, relay: str, since: str) -> list[str]: ...
    def finish(self, send_id: int, *, interrupted: bool) -> SendRecord: ...
    def record_test(
        self,
        issue: str,
        email: str,
        as_lists: str,
        as_recipient: str,
        message_id: str,
        outcome: Outcome,
    ) -> None: ...
    def save_issue(self, record: IssueRecord) -> None: ...
    def suppress(self, entry: Suppression) -> bool: ...
    def unsuppress(self, email: str) -> int: ...
    def record_bounce(
        self, email: str, issue: str, kind: str, code: str, detail: str, source: str
    ) -> int: ...
    def save_tokens(self, tokens: Iterable[TokenRecord]) -> None: ...
    def seen(self, key: str) -> bool: ...
    def mark_seen(self, key: str, what: str) -> None: ...
    def hold(self, issue: str, *, stale_after: float = 30.0) -> Holder | None: ...
    def release(self, issue: str) -> None: ...
    def close(self) -> None: ...


class _Nothing:
    """The record of a folder that has sent nothing yet: no file is made to say so."""

    def deliveries(self, issue: str) -> list[Delivery]:  # noqa: ARG002 (the interface's)
        return []

    def sends(self) -> list[SendRecord]:
        return []

    def issues(self) -> list[IssueRecord]:
        return []

    def holders(self) -> list[Holder]:
        return []

    def unfinished(self, issue: str) -> int:  # noqa: ARG002 (the interface's)
        return 0

    def suppressions(self) -> list[Suppression]:
        return []

    def bounced(self, issue: str) -> dict[str, str]:  # noqa: ARG002 (the interface's)
        return {}

    def token(self, token: str) -> TokenRecord | None:  # noqa: ARG002 (the interface's)
        return None


@dataclass(frozen=True)
class Database:
    """A ledger in PostgreSQL, where ``ledger_path`` would name a file."""

    url: str
    password_env: str

    def exists(self) -> bool:
        """Whether the ledger's tables are there yet (the first send makes them), so
        reading a database nothing was sent with makes nothing."""
        from .postgres import has_ledger  # only for a database: psycopg and all

        return has_ledger(self.url, self.password_env)

    def __str__(self) -> str:
        return shown(self.url)


def ledger_path(config: Config) -> Path | Database:
    """The ledger's file, or its database when ``[send] ledger`` is a postgresql:// address."""
    if is_database(config.ledger):
        return Database(str(config.ledger), config.ledger_password_env)
    return config.resolve(Path(config.ledger))


def open_ledger_at(config: Config) -> Ledger:
    """The workspace's ledger, opened (the caller closes it): a file, or a database."""
    where = ledger_path(config)
    if isinstance(where, Database):
        from .postgres import PostgresLedger

        return PostgresLedger(where.url, password_env=config.ledger_password_env)
    return SqliteLedger(where)


@contextmanager
def open_ledger(config: Config) -> Iterator[Ledger]:
    """The workspace's ledger, created if need be, closed (answers committed) on exit."""
    ledger = open_ledger_at(config)
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


def by_list(deliveries: Iterable[Delivery]) -> dict[str, dict[str, int]]:
    """Counts per list and state; a person on two lists counts in each."""
    out: dict[str, dict[str, int]] = {}
    for d in deliveries:
        for name in key_lists(d.lists):
            counts = out.setdefault(name, dict.fromkeys(STATES, 0))
            counts[d.state] += 1
    return out


def iter_failures(deliveries: Iterable[Delivery]) -> Iterator[Delivery]:
    return (d for d in deliveries if d.state in ("failed", "deferred", "unknown"))
