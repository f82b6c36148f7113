"""Deliver a plan: snapshot everyone into the ledger, send to those still waiting, archive.

Delivery goes person by person, the ledger recording each one as it happens,
so the same send run again after any interruption carries on where it
stopped. Every send that delivered anything updates the archive, whoever
called it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..archive import ArchiveResult, rebuild
from ..audiences import audience_key
from ..issue import Issue
from ..ledger import Ledger, Planned, SendRecord, Snapshot, open_ledger
from ..transports import Job, Outcome, Transport, TransportError, open_transport
from ..workspace import Workspace
from .eligibility import Eligibility
from .plan import SendPlan, outbox_folder

Log = Callable[[str], None]


class PreflightError(TransportError):
    """The transport cannot work (server, TLS, password, folder): nothing was sent."""


@dataclass
class SendReport:
    snapshot: Snapshot
    record: SendRecord | None  # None when nobody was left to send to
    outcomes: dict[str, int]  # state -> count, for this run
    failures: list[tuple[str, Outcome]]
    interrupted: bool = False
    archive: ArchiveResult | None = None  # when anything was sent

    @property
    def sent(self) -> int:
        return self.outcomes.get("sent", 0)


def open_transport_for(
    ws: Workspace, issue: Issue, kind: str, *, tests: bool = False, log: Log | None = None
) -> Transport:
    """The transport ``kind`` for this issue: test copies get an outbox folder of their own."""
    folder = outbox_folder(ws, issue)
    return open_transport(kind, ws.config, outbox=folder / "tests" if tests else folder, log=log)


def preflight(transport: Transport) -> None:
    try:
        transport.check()
    except PreflightError:
        raise
    except TransportError as exc:
        raise PreflightError(str(exc)) from None


def send(
    plan: SendPlan,
    ws: Workspace,
    transport: Transport,
    *,
    ledger: Ledger | None = None,
    rule: Eligibility | None = None,
    limit: int | None = None,
    stop: threading.Event | None = None,
    archive: bool = True,
    on_snapshot: Callable[[Snapshot, int], None] | None = None,
    on_done: Callable[[str, Outcome], None] | None = None,
) -> SendReport:
    """Check the transport, snapshot everyone, deliver to those ``rule`` lets through.

    Raises PreflightError before anyone is recorded if the transport cannot
    work. ``on_snapshot(snapshot, n)`` is told how many will be sent this
    run, before the first; ``on_done(email, outcome)`` after each. The
    workspace's ledger is used unless ``ledger`` is given.
    """
    preflight(transport)
    rule = rule or Eligibility()
    if ledger is None:
        with open_ledger(ws.config) as opened:
            report = _deliver(plan, ws, transport, opened, rule, limit, stop, on_snapshot, on_done)
    else:
        report = _deliver(plan, ws, transport, ledger, rule, limit, stop, on_snapshot, on_done)
    if archive and report.sent:
        report.archive = rebuild(ws)
    return report


def _deliver(
    plan: SendPlan,
    ws: Workspace,
    transport: Transport,
    ledger: Ledger,
    rule: Eligibility,
    limit: int | None,
    stop: threading.Event | None,
    on_snapshot: Callable[[Snapshot, int], None] | None,
    on_done: Callable[[str, Outcome], None] | None,
) -> SendReport:
    stop = stop or threading.Event()
    issue = plan.issue
    templates = plan.templates(ws)
    by_email = {r.email: r for r in plan.recipients}
    snapshot = ledger.snapshot(
        issue.slug,
        (
            Planned(
                r.email,
                audience_key(r.audiences),
                templates[r.audiences].envelope(r).message_id,
            )
            for r in plan.recipients
        ),
        rule,
    )
    emails = ledger.to_send(issue.slug, by_email, limit)
    if on_snapshot:
        on_snapshot(snapshot, len(emails))
    if not emails:
        transport.close()
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
            template = templates[r.audiences]
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
    return SendReport(snapshot, record, outcomes, failures, interrupted=stop.is_set())
