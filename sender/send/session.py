"""Deliver a plan: hold the issue, snapshot everyone, send to those still waiting, archive.

Delivery goes person by person, the ledger recording each one as it happens,
so the same send run again after any interruption carries on where it
stopped. One sender per issue at a time: the send holds the issue in the
ledger for as long as it runs. A person whose message cannot be made is
marked failed with the reason, and the send goes on. Every delivery that
sent anything updates the archive, whoever called it.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from typing import Any

from .. import tokens
from ..archive import ArchiveResult, publish_pictures, rebuild
from ..audiences import audience_key
from ..clock import Clock
from ..config import needs_tokens
from ..dkim import DkimError, Signer, signer_for
from ..issue import Issue
from ..ledger import (
    Holder,
    Ledger,
    LedgerError,
    Planned,
    SendRecord,
    Snapshot,
    TokenRecord,
    open_ledger,
)
from ..message import MessageTemplate, message_id
from ..recipient import Recipient, address_key
from ..transports import Job, Outcome, Transport, TransportError, open_transport
from ..workspace import Workspace
from .eligibility import Eligibility
from .plan import SendPlan, outbox_folder
from .quota import DailyQuota, Halt, Quota
from .target import Target

Log = Callable[[str], None]
# Sends a run's queue from other processes: (ledger, snapshot, queue, send id) -> report.
HandOff = Callable[["Ledger", "Snapshot", list[tuple[str, str]], int], "SendReport"]
# Values a message cannot carry (a header that cannot be folded, a missing field).
UNBUILDABLE = (ValueError, UnicodeError, LookupError)


class PreflightError(TransportError):
    """The transport cannot work (server, TLS, password, folder): nothing was sent."""


class PicturesNotPublished(PreflightError):
    """In ``hosted`` mode, pictures the emails link to do not answer at web_url yet."""


def ready(plan: SendPlan, ws: Workspace, scope: str = "delivery") -> bytes | None:
    """Everything a send needs from outside the workspace, checked before anyone is sent to:
    the token secret (returned, when the settings need tokens) and hosted pictures.

    A rehearsal in the outbox goes without the secret: its copies then show the
    placeholder link instead of a private one."""
    secret = None
    if needs_tokens(ws.config):
        try:
            secret = tokens.secret(ws.config.token_secret_env)
        except tokens.SecretMissing as exc:
            if scope == "delivery":
                raise PreflightError(str(exc)) from None
    check_published(plan, ws)
    return secret


def check_published(plan: SendPlan, ws: Workspace, *, timeout: float = 10.0) -> None:
    """``hosted`` pictures are written where the archive publishes them, then asked for
    at web_url (HTTP HEAD): every one must answer 200 with a picture, or nobody is sent
    to, since everyone would see it broken."""
    if ws.config.images_mode != "hosted":
        return
    if not any(v.pictures for v in plan.variants.values()):
        return
    written = publish_pictures(ws, plan.issue)
    missing = [(path, url, why) for path, url in written if (why := _answers(url, timeout))]
    if not missing:
        return
    lines = "\n".join(f"  {url} ({why})" for _, url, why in missing)
    folder = ws.display(missing[0][0].parent)
    raise PicturesNotPublished(
        f"{len(missing)} picture(s) are not on the web yet, so every email would show them "
        f"broken:\n{lines}\nThey are saved in {folder}/: upload the archive folder "
        f"({ws.display(ws.config.resolve(ws.config.archive))}/) to {ws.config.web_url}, "
        'then send again. (Or set [images] mode = "embed" to send them inside the emails.)'
    )


def _answers(url: str, timeout: float) -> str | None:
    """None when ``url`` answers 200 with a picture; else what it answered."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            kind = response.headers.get_content_type()
            if response.status != 200:
                return f"answered {response.status}"
            return None if kind.startswith("image/") else f"answered with {kind}, not a picture"
    except urllib.error.HTTPError as exc:
        return f"answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"could not be reached: {reason}"


@dataclass
class SendReport:
    snapshot: Snapshot
    record: SendRecord | None  # None when nobody was left to send to
    outcomes: dict[str, int]  # state -> count, for this run
    failures: list[tuple[str, Outcome]]
    interrupted: bool = False
    archive: ArchiveResult | None = None  # when anything was delivered
    took_over: Holder | None = None  # a stale send of this issue this one replaced
    target: Target | None = None
    skipped: list[str] = field(default_factory=list)  # claimed by another sender meanwhile
    quota: Quota | None = None  # the relay's daily quota stopped the send
    workers: list[Any] = field(default_factory=list)  # send --workers: each one's record
    worker_errors: list[str] = field(default_factory=list)  # what went wrong with any

    @property
    def sent(self) -> int:
        return self.outcomes.get("sent", 0)


def open_transport_for(
    ws: Workspace,
    issue: Issue,
    kind: str,
    *,
    key: str | None = None,
    tests: bool = False,
    log: Log | None = None,
) -> Transport:
    """The transport ``kind`` for this issue (``key``: as the ledger knows it); test
    copies get an outbox folder of their own."""
    folder = outbox_folder(ws, issue, key)
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
    target: Target,
    *,
    ledger: Ledger | None = None,
    rule: Eligibility | None = None,
    limit: int | None = None,
    stop: threading.Event | None = None,
    archive: bool = True,
    on_snapshot: Callable[[Snapshot, int], None] | None = None,
    on_done: Callable[[str, Outcome], None] | None = None,
    clock: Clock | None = None,
    wait: bool = False,
    on_wait: Callable[[Quota], None] | None = None,
    hand_off: HandOff | None = None,
) -> SendReport:
    """Check the transport, hold the issue, snapshot everyone, deliver to whom ``rule`` says.

    Raises PreflightError before anyone is recorded if the transport cannot
    work, IssueHeld if another send of the issue is running, and LedgerError
    when the ledger cannot record (the send stops; what was recorded stands).
    ``on_snapshot(snapshot, n)`` is told how many will be sent this run,
    before the first; ``on_done(email, outcome)`` after each. The workspace's
    ledger is used unless ``ledger`` is given.

    A relay with a daily quota ([smtp] per_day) sends what the last 24 hours
    leave room for, then stops (``report.quota`` says when more can go); with
    ``wait`` it waits for the window to open (``on_wait`` is told) and carries
    on, holding the issue. ``clock`` tells the time and waits. ``hand_off``
    (``send --workers``) sends the queue from other processes instead.
    """
    secret = ready(plan, ws, target.scope)
    preflight(transport)
    run = _Run(
        plan, ws, transport, target, rule or Eligibility(), limit, stop, on_snapshot, on_done
    )
    run.secret = secret
    run.hand_off = hand_off
    run.quota = DailyQuota.of(transport, clock or Clock(), wait=wait, on_wait=on_wait)
    try:
        run.signer = signer_for(ws.config)  # the DKIM key read and tried, before anyone
    except DkimError as exc:
        raise PreflightError(str(exc)) from None
    try:
        if ledger is None:
            with open_ledger(ws.config) as opened:
                report = run.held(opened)
        else:
            report = run.held(ledger)
    finally:
        transport.close()
    if archive and report.sent and target.scope == "delivery":
        report.archive = rebuild(ws)
    return report


class _Run:
    def __init__(
        self,
        plan: SendPlan,
        ws: Workspace,
        transport: Transport,
        target: Target,
        rule: Eligibility,
        limit: int | None,
        stop: threading.Event | None,
        on_snapshot: Callable[[Snapshot, int], None] | None,
        on_done: Callable[[str, Outcome], None] | None,
    ) -> None:
        self.plan, self.ws, self.transport, self.target = plan, ws, transport, target
        self.rule, self.limit, self.stop = rule, limit, stop or threading.Event()
        self.on_snapshot, self.on_done = on_snapshot, on_done
        self.outcomes: dict[str, int] = {}
        self.failures: list[tuple[str, Outcome]] = []
        self.skipped: list[str] = []
        self.lock = threading.Lock()
        self.secret: bytes | None = None  # makes each person's private token, when needed
        self.quota: DailyQuota | None = None
        self.signer: Signer | None = None
        # send --workers: what sends the queue instead of this process (sender.send.workers)
        self.hand_off: HandOff | None = None

    def held(self, ledger: Ledger) -> SendReport:
        key = self.target.key
        took_over = ledger.hold(key)
        try:
            from .workers import share  # the relay's pace and quota: one budget in PostgreSQL

            share(self, ledger)
            ledger.save_issue(self.target.record)
            report = self.deliver(ledger)
        finally:
            ledger.release(key)
        report.took_over, report.target = took_over, self.target
        return report

    def message_id(self, person: Planned, generation: int) -> str:
        salt = f"resend {generation}" if generation else ""
        return message_id(self.target.record.key, person.email, self.ws.config.domain, salt=salt)

    def planned(self, by_key: dict[str, Recipient]) -> Iterator[Planned]:
        """Everyone, for the snapshot, made as the ledger reads them: one audience key
        per set of lists, not per person."""
        named: dict[frozenset[str], str] = {}
        issue, domain = self.target.record.key, self.ws.config.domain
        for k, r in by_key.items():
            lists = named.get(r.audiences)
            if lists is None:
                lists = named[r.audiences] = audience_key(r.audiences)
            yield Planned(k, lists, message_id(issue, k, domain), r.email)

    def deliver(self, ledger: Ledger) -> SendReport:
        plan, key = self.plan, self.target.key
        templates = plan.templates(self.ws)
        by_key = {address_key(r.email): r for r in plan.recipients}
        snapshot = ledger.snapshot(key, self.planned(by_key), self.rule, renew=self.message_id)
        queue = ledger.queue(key, by_key, self.limit)
        if self.on_snapshot:
            self.on_snapshot(snapshot, len(queue))
        if not queue:
            return SendReport(snapshot, None, {}, [])
        private = self.tokens(ledger, [(email, by_key[email]) for email, _ in queue])
        issue = plan.issue
        send_id = ledger.begin(
            self.target.record.key,
            issue.title,
            issue.date.isoformat(),
            plan.selection.names,
            self.transport.name,
            scope=self.target.scope,
            file=self.target.record.file,
        )
        if self.hand_off is not None:  # --workers: other processes send the queue
            return self.hand_off(ledger, snapshot, queue, send_id)
        hands = _Hands(self, ledger, send_id, templates, by_key, private)
        quota, stopped = self.quota, None
        try:
            while True:  # one round, or one per day's quota with --wait
                halt = Halt(self.stop)
                if quota is None or quota.open(ledger, halt):
                    self.transport.send_all(
                        hands.jobs(queue), on_start=hands.started, on_done=hands.done, stop=halt
                    )
                if quota is None or self.stop.is_set() or not quota.reached:
                    break
                left = None if self.limit is None else self.limit - self.sum_outcomes()
                queue = ledger.queue(key, by_key, left) if left is None or left > 0 else []
                if not queue:
                    break
                stopped = quota.report(ledger)
                if not quota.wait_for(stopped, self.stop):
                    break
                stopped = None
        except LedgerError:
            self.stop.set()
            self._finish(ledger, send_id)
            raise
        record = self._finish(ledger, send_id)
        return SendReport(
            snapshot,
            record,
            self.outcomes,
            self.failures,
            interrupted=self.stop.is_set(),
            skipped=self.skipped,
            quota=stopped,
        )

    def _finish(self, ledger: Ledger, send_id: int) -> SendRecord | None:
        try:
            return ledger.finish(send_id, interrupted=self.stop.is_set())
        except LedgerError:
            return None  # the ledger's own error is what the user needs to see

    def sum_outcomes(self) -> int:
        with self.lock:
            return sum(self.outcomes.values())

    def tokens(self, ledger: Ledger, people: list[tuple[str, Recipient]]) -> dict[str, str]:
        """Each person's private token for this issue, saved in the ledger before any goes."""
        if self.secret is None:
            return {}
        mandatory = self.ws.config.mandatory_lists
        issue = self.target.record.key
        made = {}
        for email, r in people:
            leavable = audience_key(r.audiences - mandatory) if r.audiences - mandatory else ""
            made[email] = TokenRecord(
                tokens.make(self.secret, email, leavable, issue), email, leavable, issue
            )
        ledger.save_tokens(made.values())
        return {email: record.token for email, record in made.items()}

    def count(self, email: str, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes[outcome.state] = self.outcomes.get(outcome.state, 0) + 1
            if outcome.state != "sent":
                self.failures.append((email, outcome))
        if self.on_done:
            self.on_done(email, outcome)


class _Hands:
    """What every sender of a run does with each person: make their message when a
    connection is ready for it, claim them just before it goes (the quota first),
    record the answer. A ``send`` has one; each worker of ``send --workers`` its own."""

    def __init__(
        self,
        run: _Run,
        ledger: Ledger,
        send_id: int,
        templates: dict[frozenset[str], MessageTemplate],
        by_key: dict[str, Recipient],
        private: dict[str, str],
    ) -> None:
        self.run, self.ledger, self.send_id = run, ledger, send_id
        self.templates, self.by_key, self.private = templates, by_key, private
        self.key = run.target.key

    def jobs(self, queue: Iterable[tuple[str, str]]) -> Iterator[Job]:
        # Lazily: a message is made only when a connection is ready for it.
        bounces = self.run.ws.config.bounce_address
        signer = self.run.signer
        for email, mid in queue:
            r = self.by_key[email]
            template = self.templates[r.audiences]
            token = self.private.get(email)
            if token:
                r = replace(r, fields={**r.fields, "unsubscribe_token": token})
            try:
                envelope = template.envelope(r, message_id=mid)
                if token and bounces:
                    envelope = replace(envelope, sender=verp(bounces, token))
                job = Job(envelope, template.render(r, message_id=mid), key=email)
            except UNBUILDABLE as exc:
                reason = f"the message could not be made: {exc}"
                self.ledger.mark_failed(self.key, email, reason)
                self.run.count(email, Outcome("failed", None, reason))
                continue
            if signer is not None:  # DKIM: once per person, on the final bytes
                job = Job(job.envelope, signer.sign(job.data), job.key)
            yield job

    def started(self, job: Job) -> bool:
        quota = self.run.quota
        if quota is not None and not quota.take():
            return False  # the day's quota is used up: left pending, for later
        claimed = self.ledger.mark_sending(self.key, str(job.key), self.send_id)
        if not claimed:
            with self.run.lock:
                self.run.skipped.append(str(job.key))
            if quota is not None:
                quota.give_back()
        return claimed

    def done(self, job: Job, outcome: Outcome) -> None:
        self.ledger.mark_done(self.key, str(job.key), outcome)
        self.run.count(str(job.key), outcome)


def verp(bounce_address: str, token: str) -> str:
    """``bounces+TOKEN@example.org``: whatever a bounce says, its envelope says whose it is."""
    _, address = parseaddr(bounce_address)
    local, _, domain = address.partition("@")
    return f"{local}+{token}@{domain}"
