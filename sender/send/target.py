"""Which ledger rows a send writes: the issue's identity, and delivery or rehearsal.

Saving to the ``.eml`` outbox is a rehearsal unless the workspace says the
outbox is how it delivers (``[send] outbox_is_delivery``): a rehearsal is
recorded apart, so it never stops a later send through the mail server.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ledger import REHEARSAL, IssueRecord, Scope, read_ledger
from ..ledger.identity import Identified, Unclear, identify
from ..workspace import Workspace
from .plan import SendPlan

__all__ = ["Target", "Unclear", "scope_for", "target"]


@dataclass(frozen=True)
class Target:
    record: IssueRecord
    scope: Scope
    new: bool  # the ledger has never seen this issue
    was: IssueRecord | None  # the file or title it was known by, when they changed

    @property
    def key(self) -> str:
        """The issue's column in the ledger's deliveries."""
        return self.record.key + (REHEARSAL if self.scope == "rehearsal" else "")

    @property
    def delivery_key(self) -> str:
        return self.record.key

    @property
    def rehearsal_key(self) -> str:
        return self.record.key + REHEARSAL


def scope_for(ws: Workspace, kind: str) -> Scope:
    return "rehearsal" if kind == "eml" and not ws.config.outbox_is_delivery else "delivery"


def target(
    ws: Workspace,
    plan: SendPlan,
    kind: str,
    *,
    same_as: str | None = None,
    new_issue: bool = False,
) -> Target:
    """The issue this plan's file is, read from the ledger (nothing written).

    Raises Unclear when the file's date changed while its earlier send is
    unfinished, and KeyError for a ``same_as`` the ledger does not know.
    """
    issue = plan.issue
    with read_ledger(ws.config) as ledger:
        found: Identified = identify(
            ledger,
            slug=issue.slug,
            file=ws.display(issue.path),
            date=issue.date.isoformat(),
            title=issue.title,
            same_as=same_as,
            new_issue=new_issue,
        )
    return Target(found.record, scope_for(ws, kind), found.new, found.was)
