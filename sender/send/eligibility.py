"""Who is sent to this run: the rule the summary shows and the ledger's snapshot applies.

Nobody gets an issue twice unless the user says ``--resend``; a hard failure
is tried again only with ``--retry-failed``, a message the server never
answered (it may have arrived) only with ``--retry-unknown``; everyone else
(new, pending, deferred, or 'sending' when an earlier run stopped) is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Config
from ..ledger import read_ledger
from ..recipient import address_key
from ..transports import DeliveryState
from .plan import SendPlan


@dataclass(frozen=True)
class Eligibility:
    resend: bool = False
    retry_failed: bool = False
    retry_unknown: bool = False

    def __call__(self, state: DeliveryState | None) -> bool:
        if state == "sent":
            return self.resend
        if state == "failed":
            return self.retry_failed
        if state == "unknown":
            return self.retry_unknown
        return True


@dataclass(frozen=True)
class Standing:
    """Where a plan's people stand before a run, as the ledger last recorded them."""

    people: int
    already_sent: int  # have the issue
    failed: int  # failed before
    unknown: int  # were being sent when a run stopped: answer unknown
    waiting: int  # sent this run, before --limit
    no_answer: int = 0  # handed over, the server never answered: may have arrived
    rehearsed: int = 0  # saved to the outbox earlier (a rehearsal), not sent

    def this_run(self, limit: int | None) -> int:
        return min(self.waiting, limit) if limit else self.waiting


def ledger_states(config: Config, key: str) -> dict[str, DeliveryState]:
    """Each person's state under this ledger key, read without creating the ledger."""
    with read_ledger(config) as ledger:
        return {d.email: d.state for d in ledger.deliveries(key)}


def standing(
    plan: SendPlan,
    states: Mapping[str, DeliveryState],
    rule: Eligibility,
    rehearsals: Mapping[str, DeliveryState] | None = None,
) -> Standing:
    """``states`` by address key; ``rehearsals`` too, when this run is a real delivery."""
    keys = [address_key(r.email) for r in plan.recipients]
    mine = [states.get(k) for k in keys]
    saved = rehearsals or {}
    return Standing(
        people=len(mine),
        already_sent=mine.count("sent"),
        failed=mine.count("failed"),
        unknown=mine.count("sending"),
        waiting=sum(1 for s in mine if rule(s)),
        no_answer=mine.count("unknown"),
        rehearsed=sum(
            1 for k, s in zip(keys, mine, strict=True) if s is None and saved.get(k) == "sent"
        ),
    )
