"""Who is sent to this run: the rule the summary shows and the ledger's snapshot applies.

Nobody gets an issue twice unless the user says ``--resend``; a hard failure
is tried again only with ``--retry-failed``; everyone else (new, pending,
deferred, or 'sending' when an earlier run stopped) is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Config
from ..ledger import read_ledger
from ..transports import DeliveryState
from .plan import SendPlan


@dataclass(frozen=True)
class Eligibility:
    resend: bool = False
    retry_failed: bool = False

    def __call__(self, state: DeliveryState | None) -> bool:
        if state == "sent":
            return self.resend
        if state == "failed":
            return self.retry_failed
        return True


@dataclass(frozen=True)
class Standing:
    """Where a plan's people stand before a run, as the ledger last recorded them."""

    people: int
    already_sent: int  # have the issue
    failed: int  # failed before
    unknown: int  # were being sent when a run stopped: answer unknown
    waiting: int  # sent this run, before --limit

    def this_run(self, limit: int | None) -> int:
        return min(self.waiting, limit) if limit else self.waiting


def ledger_states(config: Config, slug: str) -> dict[str, DeliveryState]:
    """Each person's state for this issue, read without creating the ledger."""
    with read_ledger(config) as ledger:
        return {d.email: d.state for d in ledger.deliveries(slug)}


def standing(plan: SendPlan, states: Mapping[str, DeliveryState], rule: Eligibility) -> Standing:
    mine = [states.get(r.email) for r in plan.recipients]
    return Standing(
        people=len(mine),
        already_sent=mine.count("sent"),
        failed=mine.count("failed"),
        unknown=mine.count("sending"),
        waiting=sum(1 for s in mine if rule(s)),
    )
