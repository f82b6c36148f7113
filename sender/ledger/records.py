"""What the ledger holds and hands out: plain records, the same whatever database keeps them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..transports.base import DeliveryState

# A delivery is real mail; a rehearsal is a copy saved to the .eml outbox to look at.
Scope = Literal["delivery", "rehearsal"]
# Whether a person in this state is sent to this run: the send's rule, not the ledger's.
Eligible = Callable[[DeliveryState], bool]


@dataclass(frozen=True)
class Planned:
    """One person in a send's snapshot."""

    email: str  # the address key: one person, however the address is capitalised
    lists: str  # audience key: 'headteachers' or 'headteachers+managers'
    message_id: str
    address: str = ""  # as written in the list, for people to read ('' = the key)


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
    address: str = ""


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
    scope: Scope = "delivery"
    file: str = ""


@dataclass(frozen=True)
class Snapshot:
    """What a new run found: how many were new, and what earlier runs left."""

    new: int
    already_sent: int
    unknown: list[str]  # were 'sending' when a run stopped: outcome unknown, sent again
    failed: int  # earlier hard failures, skipped unless retried
    to_send: int


@dataclass(frozen=True)
class IssueRecord:
    """An issue as the ledger knows it: its identity outlives its file name."""

    key: str  # the identity: the slug it was first sent under
    file: str  # the file it was last sent from, as the user would type it
    date: str  # ISO date
    title: str


@dataclass(frozen=True)
class Holder:
    """Who is sending an issue now: one sender per issue at a time."""

    issue: str
    host: str
    pid: int
    since: str  # ISO 8601, UTC
    heartbeat: float  # seconds since the epoch, renewed while the send runs
    token: str  # this holder's own secret, so only it renews or lets go

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}, since {self.since[:19].replace('T', ' ')} UTC"


@dataclass(frozen=True)
class Suppression:
    """Someone not to send to: for the lists named (all of them when ``lists`` is '')."""

    email: str  # the address key
    lists: str  # audience key of the lists it covers, '' for every list
    reason: str  # "hard bounce", "soft bounces", "unsubscribed", "by hand"
    code: str
    detail: str
    issue: str
    source: str  # where it was learnt: "inbox", "web", "mailto", "newsletter suppressed"
    at: str

    def covers(self, list_name: str) -> bool:
        return not self.lists or list_name in self.lists.split("+")


@dataclass(frozen=True)
class TokenRecord:
    """What a private token stands for."""

    token: str
    email: str  # the address key
    lists: str  # audience key: the lists the person was sent this issue as a member of
    issue: str
