"""Who gets which version: lists read, variants rendered, every field checked.

Planning reads the issue and the lists, renders one variant per distinct set
of lists, and checks that every placeholder can be filled for every person:
any error stops the send before a single message is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..audiences import audience_key
from ..issue import Issue
from ..ledger import read_ledger
from ..lint import picture_problems, placeholder_problems
from ..lists import Selection, apply_suppressions, select
from ..message import MessageTemplate, check_fields, send_date
from ..problems import Problem, ProblemsError, raise_errors
from ..recipient import Recipient
from ..variant import Variant
from ..workspace import Workspace


@dataclass
class SendPlan:
    issue: Issue
    selection: Selection
    variants: dict[frozenset[str], Variant]
    date: datetime
    warnings: list[Problem] = field(default_factory=list)

    @property
    def recipients(self) -> list[Recipient]:
        return self.selection.recipients

    def counts_by_variant(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.recipients:
            key = audience_key(r.audiences)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def templates(
        self, ws: Workspace, *, test: bool = False
    ) -> dict[frozenset[str], MessageTemplate]:
        return {
            key: MessageTemplate(variant, ws.config, date=self.date, test=test)
            for key, variant in self.variants.items()
        }


def plan_send(ws: Workspace, issue_path: Path, lists: Sequence[str]) -> SendPlan:
    """Everything decided and checked; raises ProblemsError if anything is wrong.

    Rows with a bad address are skipped and reported; a list that cannot be
    read at all (no email column, not a CSV file) stops the send.
    """
    issue = ws.load_issue(issue_path)
    selection = chosen(ws, lists)
    unreadable = [p for p in selection.errors if p.line in (None, 1)]
    if unreadable:
        raise ProblemsError(unreadable)
    # A placeholder the send's lists have no column for, said where it is written.
    columns = ws.list_columns()
    raise_errors(
        placeholder_problems(
            issue,
            {n: columns[n] for n in selection.names if n in columns},
            file=ws.display(issue_path),
        )
    )
    sets = list(dict.fromkeys(r.audiences for r in selection.recipients))
    variants = dict(zip(sets, ws.renderer.variants(issue, sets), strict=True))
    missing = check_fields(
        variants.values(),
        selection.recipients,
        config=ws.config,
        pick=lambda r: [variants[r.audiences]],
    )
    if missing:
        raise ProblemsError(missing)
    raise_errors(
        picture_problems(issue, list(variants.values()), ws.config, file=ws.display(issue.path))
    )
    return SendPlan(issue, selection, variants, send_date(), selection.warnings)


def outbox_folder(ws: Workspace, issue: Issue, key: str | None = None) -> Path:
    """The issue's outbox folder, named by the name the ledger knows it by when given:
    two issues whose file names differ only in spaces or capitals keep their own."""
    return ws.config.resolve(ws.config.outbox) / (key or issue.slug)


def chosen(ws: Workspace, lists: Sequence[str]) -> Selection:
    """The people of these lists, less everyone the ledger says not to send to."""
    selection = select(ws.config.recipients_dir, ws.root, lists)
    with read_ledger(ws.config) as ledger:
        apply_suppressions(selection, ledger.suppressions())
    return selection
