"""A send: plan (who gets which version), snapshot into the ledger, deliver.

Planning reads the issue and the lists, renders one variant per distinct set
of lists, and checks that every placeholder can be filled for every person:
any error stops the send before a single message is written. Delivery then
goes person by person, the ledger recording each one as it happens, so the
same command run again after any interruption carries on where it stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .issue import Issue
from .ledger import Ledger, Planned, SendRecord, Snapshot, SqliteLedger
from .lists import Recipient, Selection, select
from .message import MessageTemplate, check_fields, send_date
from .problems import Problem, ProblemsError
from .transports import Job, Outcome, Transport
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

    def counts_by_variant(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.recipients:
            key = audience_key(frozenset(r.lists))
            counts[key] = counts.get(key, 0) + 1
        return counts

    def templates(
        self, ws: Workspace, *, test: bool = False
    ) -> dict[frozenset[str], MessageTemplate]:
        return {
            key: MessageTemplate(variant, ws.config, date=self.date, test=test)
            for key, variant in self.variants.items()
        }


@dataclass
class SendReport:
    snapshot: Snapshot
    record: SendRecord | None  # None when nobody was left to send to
    outcomes: dict[str, int]  # state -> count, for this run
    failures: list[tuple[str, Outcome]]


def open_ledger(ws: Workspace) -> SqliteLedger:
    return SqliteLedger(ws.config.resolve(ws.config.ledger))


def ledger_states(ws: Workspace, issue: Issue) -> dict[str, str]:
    """Each person's state for this issue, read without creating the ledger."""
    path = ws.config.resolve(ws.config.ledger)
    if not path.exists():
        return {}
    ledger = SqliteLedger(path)
    try:
        return {d.email: d.state for d in ledger.deliveries(issue.slug)}
    finally:
        ledger.close()


def plan_send(
    ws: Workspace, issue_path: Path, lists: Sequence[str], *, pick: Sequence[str] = ()
) -> SendPlan:
    """Everything decided and checked; raises ProblemsError if anything is wrong.

    Rows with a bad address are skipped and reported; a list that cannot be
    read at all (no email column, not a CSV file) stops the send.
    """
    issue = ws.load_issue(issue_path)
    selection = select(ws.config.recipients_dir, ws.root, lists)
    unreadable = [p for p in selection.errors if p.line in (None, 1)]
    if unreadable:
        raise ProblemsError(unreadable)
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


def send(
    plan: SendPlan,
    ws: Workspace,
    transport: Transport,
    ledger: Ledger,
    *,
    resend: bool = False,
    retry_failed: bool = False,
    limit: int | None = None,
    stop: threading.Event | None = None,
    on_snapshot: Callable[[Snapshot, int], None] | None = None,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> SendReport:
    """Snapshot everyone into the ledger, then deliver to those still pending.

    ``on_snapshot(snapshot, n)`` is told how many will be sent this run, before
    the first; ``on_done(email, outcome)`` after each.
    """
    stop = stop or threading.Event()
    issue = plan.issue
    templates = plan.templates(ws)
    by_email = {r.email: r for r in plan.recipients}
    snapshot = ledger.snapshot(
        issue.slug,
        (
            Planned(
                r.email,
                audience_key(frozenset(r.lists)),
                templates[frozenset(r.lists)].envelope(r).message_id,
            )
            for r in plan.recipients
        ),
        resend=resend,
        retry_failed=retry_failed,
    )
    emails = ledger.to_send(issue.slug, by_email, limit)
    if on_snapshot:
        on_snapshot(snapshot, len(emails))
    if not emails:
        return SendReport(snapshot, None, {}, [])
    send_id = ledger.begin(
        issue.slug, issue.title, issue.date.isoformat(), plan.selection.names, transport.name
    )
    outcomes: dict[str, int] = {}
    failures: list[tuple[str, Outcome]] = []
    lock = threading.Lock()

    def jobs() -> Iterator[Job]:
        # Lazily: a message is made only when a connection is ready for it.
        for email in emails:
            r = by_email[email]
            template = templates[frozenset(r.lists)]
            yield Job(template.envelope(r), template.render(r), key=email)

    def started(job: Job) -> None:
        ledger.mark_sending(issue.slug, str(job.key), send_id)

    def done(job: Job, outcome: Outcome) -> None:
        ledger.mark_done(issue.slug, str(job.key), outcome)
        with lock:
            outcomes[outcome.state] = outcomes.get(outcome.state, 0) + 1
            if outcome.state != "sent":
                failures.append((str(job.key), outcome))
        if on_done:
            on_done(str(job.key), outcome)

    try:
        transport.send_all(jobs(), on_start=started, on_done=done, stop=stop)
    finally:
        transport.close()
        record = ledger.finish(send_id, interrupted=stop.is_set())
    return SendReport(snapshot, record, outcomes, failures)


def test_send(
    plan: SendPlan,
    ws: Workspace,
    transport: Transport,
    ledger: Ledger,
    to: Sequence[str],
    *,
    as_recipient: Recipient,
) -> list[tuple[str, Outcome]]:
    """The real message of ``as_recipient``'s lists, personalised as them, sent to ``to``.

    Subject prefixed [TEST], its own Message-ID, recorded as a test: never
    counted as sent to anyone on the list.
    """
    template = plan.templates(ws, test=True)[frozenset(as_recipient.lists)]
    key = audience_key(frozenset(as_recipient.lists))
    results: list[tuple[str, Outcome]] = []

    def jobs() -> Iterator[Job]:
        for address in to:
            stand_in = Recipient(address, "", as_recipient.fields, as_recipient.lists)
            yield Job(template.envelope(stand_in), template.render(stand_in), key=address)

    def done(job: Job, outcome: Outcome) -> None:
        ledger.record_test(
            plan.issue.slug, str(job.key), key, as_recipient.email, job.envelope.message_id, outcome
        )
        results.append((str(job.key), outcome))

    try:
        transport.send_all(jobs(), on_start=lambda job: None, on_done=done, stop=threading.Event())
    finally:
        transport.close()
    return results


def outbox_folder(ws: Workspace, issue: Issue) -> Path:
    return ws.config.resolve(ws.config.outbox) / issue.slug
