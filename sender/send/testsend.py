"""A ``[TEST]`` copy: the real message of someone's lists, personalised as them, to any address.

Its own Message-ID, recorded as a test: never counted as sent to anyone on
the list. Used by ``newsletter send --test-to`` and the preview's test button.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..audiences import audience_key
from ..dkim import DkimError, signer_for
from ..ledger import Ledger, open_ledger
from ..recipient import Recipient, address_key
from ..transports import Job, Outcome
from ..workspace import Workspace
from .plan import SendPlan
from .session import Log, PreflightError, open_transport_for, preflight


class NotOnList(LookupError):
    """The person to personalise a test as is not on the lists (or nobody is)."""


@dataclass(frozen=True)
class TestReport:
    key: str  # the version sent: 'headteachers+managers'
    person: Recipient  # personalised as
    transport: str
    results: list[tuple[str, Outcome]]  # address -> what happened

    __test__ = False  # not a pytest class

    @property
    def failures(self) -> list[tuple[str, Outcome]]:
        return [(a, o) for a, o in self.results if o.state != "sent"]


def stand_in(plan: SendPlan, as_recipient: str | None) -> Recipient:
    """The person a test is personalised as: ``as_recipient``, or the first on the lists."""
    if not plan.recipients:
        raise NotOnList("that list has nobody on it to personalise the test as.")
    if as_recipient is None:
        return plan.recipients[0]
    wanted = address_key(as_recipient)
    for r in plan.recipients:
        if address_key(r.email) == wanted:
            return r
    raise NotOnList(f"{as_recipient} is not on {', '.join(plan.selection.names)}")


def send_test(
    plan: SendPlan,
    ws: Workspace,
    to: Sequence[str],
    *,
    as_recipient: Recipient,
    kind: str,
    log: Log | None = None,
    ledger: Ledger | None = None,
) -> TestReport:
    """Send ``as_recipient``'s version to each address in ``to`` by transport ``kind``.

    Raises PreflightError (nothing sent) or TransportError (the transport
    broke down part-way).
    """
    transport = open_transport_for(ws, plan.issue, kind, tests=True, log=log)
    preflight(transport)
    try:
        signer = signer_for(ws.config)  # signed like the real ones, to test the DNS record
    except DkimError as exc:
        raise PreflightError(str(exc)) from None
    template = plan.templates(ws, test=True)[as_recipient.audiences]
    key = audience_key(as_recipient.audiences)
    results: list[tuple[str, Outcome]] = []

    def jobs() -> Iterator[Job]:
        for address in to:
            person = Recipient(address, "", as_recipient.fields, as_recipient.lists)
            data = template.render(person)
            if signer is not None:
                data = signer.sign(data)
            yield Job(template.envelope(person), data, key=address)

    def deliver(record: Ledger) -> None:
        def done(job: Job, outcome: Outcome) -> None:
            record.record_test(
                plan.issue.slug,
                str(job.key),
                key,
                as_recipient.email,
                job.envelope.message_id,
                outcome,
            )
            results.append((str(job.key), outcome))

        try:
            transport.send_all(
                jobs(), on_start=lambda _job: True, on_done=done, stop=threading.Event()
            )
        finally:
            transport.close()

    if ledger is None:
        with open_ledger(ws.config) as opened:
            deliver(opened)
    else:
        deliver(ledger)
    return TestReport(key, as_recipient, transport.name, results)
