"""A send: plan (who gets which version), then deliver, one person at a time.

Planning reads the issue and the lists, renders one variant per distinct set
of lists, and checks that every placeholder can be filled for every person:
any error stops the send before a single message is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .issue import Issue
from .lists import Recipient, Selection, select
from .message import MessageTemplate, check_fields, send_date
from .problems import Problem, ProblemsError
from .transports import Transport
from .variant import Variant, audience_key
from .workspace import Workspace


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

    def audience_of(self, recipient: Recipient) -> frozenset[str]:
        return frozenset(recipient.lists)

    def counts_by_variant(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.recipients:
            key = audience_key(self.audience_of(r))
            counts[key] = counts.get(key, 0) + 1
        return counts


@dataclass
class SendResult:
    sent: int = 0


def plan_send(ws: Workspace, issue_path: Path, lists: Sequence[str]) -> SendPlan:
    """Everything decided and checked; raises ProblemsError if anything is wrong."""
    issue = ws.load_issue(issue_path)
    selection = select(ws.config.recipients_dir, ws.root, lists)
    sets = list(dict.fromkeys(frozenset(r.lists) for r in selection.recipients))
    variants = dict(zip(sets, ws.renderer.variants(issue, sets), strict=True))
    missing = check_fields(
        variants.values(),
        selection.recipients,
        config=ws.config,
        pick=lambda r: [variants[frozenset(r.lists)]],
    )
    if missing:
        raise ProblemsError(missing)
    return SendPlan(issue, selection, variants, send_date(), selection.warnings)


def deliver(
    plan: SendPlan,
    ws: Workspace,
    transport: Transport,
    *,
    on_message: Callable[[Recipient, str], None] | None = None,
) -> SendResult:
    """Render and hand each person's message to the transport, in list order."""
    templates = {
        key: MessageTemplate(variant, ws.config, date=plan.date)
        for key, variant in plan.variants.items()
    }
    result = SendResult()
    try:
        for recipient in plan.recipients:
            template = templates[plan.audience_of(recipient)]
            data = template.render(recipient)
            where = transport.deliver(template.envelope(recipient), data)
            result.sent += 1
            if on_message:
                on_message(recipient, where)
    finally:
        transport.close()
    return result


def outbox_folder(ws: Workspace, issue: Issue) -> Path:
    return ws.config.resolve(ws.config.outbox) / issue.slug
