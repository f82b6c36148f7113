"""Several senders of one send: ``send --workers N`` on this machine, ``newsletter worker``
from another one with the same workspace and the same PostgreSQL ledger.

``send --workers N`` does what ``send`` does up to the first message (checks,
holds the issue, snapshots everyone, saves the tokens, begins the send), then
queues the run's people in the ledger and starts N worker processes, and waits
for them, showing the ledger's counts. Each worker, and any ``newsletter
worker`` that joins from elsewhere, registers a lease renewed by a heartbeat
and sends with its own connections: it claims a small batch of people with
``SELECT … FOR UPDATE SKIP LOCKED`` (nobody else can then have them), makes
each message when a connection is ready, claims the person just before it goes
(``sending``, committed with the previous answers, as on one machine) and
records the answer. When the queue is empty it puts back the people of any
worker whose lease ran out (its heartbeat is old, or its process on this
machine is gone: ``kill -9``) and carries on with them; those that worker had
handed to the server are sent again and reported as unknown, at most one per
connection of that worker, exactly as a send resumed after a crash. The
relay's pace and daily quota are one budget in the database for every sender
(``share``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import DAY, Clock, stamp
from ..config import SmtpConfig
from ..dkim import DkimError, signer_for
from ..ledger import REHEARSAL, Ledger, LedgerError, Snapshot, open_ledger
from ..ledger.identity import known_as
from ..ledger.postgres import PostgresLedger, Reaped, WorkerRecord
from ..problems import ProblemsError
from ..recipient import address_key
from ..transports import Outcome, Transport
from ..transports.smtp.ratelimit import RateLimiter
from ..workspace import Workspace
from .eligibility import Eligibility
from .plan import plan_send
from .quota import DailyQuota, Halt, _Counts
from .session import (
    PreflightError,
    SendReport,
    _Hands,
    _Run,
    open_transport_for,
    preflight,
    ready,
)
from .target import Target

LEASE = 30.0  # seconds a worker that stopped answering keeps the people it claimed
_IDLE = 0.2  # seconds between looks at the queue while others finish


class NeedsDatabase(LedgerError):
    """Several senders of one send need the PostgreSQL ledger."""


def needs_database(what: str) -> NeedsDatabase:
    return NeedsDatabase(
        f"{what} needs the PostgreSQL ledger, which several senders can share: set [send] "
        'ledger = "postgresql://user@host/database" in newsletter.toml (copy the ledger '
        "there first with 'newsletter ledger migrate --to …'). The SQLite ledger has one "
        "sender at a time."
    )


# -- one budget per relay --------------------------------------------------------------


class SharedLimiter(RateLimiter):
    """The relay's pace for every sender through it: each slot is reserved in the ledger.

    Slowing down when the server throttles stays this sender's own (halving
    the spacing it asks for); the slots, and the per-minute and per-hour
    windows, are counted for everyone."""

    def __init__(self, config: SmtpConfig, ledger: PostgresLedger) -> None:
        super().__init__(config.rate, config.per_minute, config.per_hour)
        self._ledger, self._relay = ledger, config.account

    def reserve(self) -> float:
        if self.unlimited:
            return super().reserve()
        with self._lock:
            interval = self._interval
            windows = [(times.maxlen or 0, period) for times, period in self._windows]
        wait = self._ledger.reserve_slot(self._relay, interval, windows)
        self._recent.append(self._clock() + max(wait, 0.0))
        return max(wait, 0.0)


class SharedQuota(DailyQuota):
    """The relay's daily quota for every sender through it: what was sent in the last 24
    hours and what others have taken and not yet recorded, taken one at a time in the
    ledger."""

    def __init__(self, base: DailyQuota, ledger: PostgresLedger) -> None:
        super().__init__(base.relay, base.per_day, base.clock, wait=base.wait, on_wait=base.on_wait)
        self._ledger = ledger

    def _since(self) -> str:
        return stamp(self.clock.now() - DAY)

    def open(self, ledger: _Counts, halt: threading.Event) -> bool:
        """As for one sender, less what the others have taken and not yet recorded."""
        super().open(ledger, halt)
        taken = self._ledger.quota_used(self.relay, self._since()) - len(self._sent(ledger))
        with self._lock:
            self.left -= max(taken, 0)
            self.reached = self.left <= 0
        return not self.reached

    def take(self) -> bool:
        if self._ledger.quota_take(self.relay, self.per_day, self._since()):
            return True
        with self._lock:
            self.reached = True
            if self._halt is not None:
                self._halt.set()
        return False

    def give_back(self) -> None:
        self._ledger.quota_give_back(self.relay)


def share(run: _Run, ledger: Ledger) -> None:
    """With the PostgreSQL ledger, the run's pace and quota are everyone's (one budget per
    relay in the database); with SQLite, one sender's own, as they were."""
    if not isinstance(ledger, PostgresLedger):
        return
    if run.quota is not None and not isinstance(run.quota, SharedQuota):
        run.quota = SharedQuota(run.quota, ledger)
    config: SmtpConfig | None = getattr(run.transport, "config", None)
    limiter = getattr(run.transport, "limiter", None)
    shared = isinstance(limiter, SharedLimiter)
    if isinstance(config, SmtpConfig) and isinstance(limiter, RateLimiter) and not shared:
        run.transport.limiter = SharedLimiter(config, ledger)  # type: ignore[attr-defined]


# -- send --workers N: the run, sent by worker processes --------------------------------


@dataclass
class Workforce:
    """How ``send --workers`` starts its workers and shows their progress."""

    workspace: Path
    issue: Path
    count: int
    carrier: Transport | None = None  # the transport checked before the workers start
    lease: float = LEASE
    on_progress: Callable[[dict[str, int]], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    env: dict[str, str] | None = None

    def argv(self, send_id: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "sender",
            "-w",
            str(self.workspace),
            "worker",
            str(self.issue),
            "--send-id",
            str(send_id),
            "--lease",
            str(self.lease),
        ]

    def hand_off(
        self, ledger: Ledger, snapshot: Snapshot, queue: list[tuple[str, str]], send_id: int
    ) -> SendReport:
        """Queue the run, start the workers, wait for them, and report from the ledger."""
        if not isinstance(ledger, PostgresLedger):
            raise needs_database("send --workers")
        key = _key_of(ledger, send_id)
        ledger.open_run(key, send_id, [e for e, _ in queue])
        procs: list[subprocess.Popen[bytes]] = []
        said: list[str] = []
        with ExitStack() as files:
            logs = [files.enter_context(tempfile.TemporaryFile()) for _ in range(self.count)]
            try:
                for log in logs:
                    procs.append(
                        subprocess.Popen(
                            self.argv(send_id),
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=self.env,
                        )
                    )
                self._wait(ledger, procs, send_id)
            finally:
                for p in procs:  # Ctrl-C here, or an error: each worker told, then waited for
                    if p.poll() is None:
                        p.send_signal(signal.SIGINT)
                for p in procs:
                    try:
                        p.wait(60)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            for p, log in zip(procs, logs, strict=False):
                log.seek(0)
                text = log.read().decode("utf-8", "replace").strip()
                if p.returncode != 0 and text:
                    said.append(f"worker process {p.pid} stopped (exit {p.returncode}): {text}")
        ledger.reap(send_id, stale_after=self.lease)  # a worker killed on its way out
        daily = DailyQuota.of(self.carrier, Clock())
        quota = SharedQuota(daily, ledger) if daily is not None else None
        return _report(ledger, snapshot, send_id, key, queue, said, self.stop.is_set(), quota)

    def _wait(
        self, ledger: PostgresLedger, procs: list[subprocess.Popen[bytes]], send_id: int
    ) -> None:
        told = False
        while _alive(procs):
            if self.stop.wait(0.5) and not told:
                told = True  # each stops after the messages on their way (as Ctrl-C does)
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGINT)
            if self.on_progress is not None:
                self.on_progress(ledger.progress(send_id))


def _alive(procs: Sequence[subprocess.Popen[bytes]]) -> bool:
    return any(p.poll() is None for p in procs)


def _key_of(ledger: PostgresLedger, send_id: int) -> str:
    record = ledger.send_record(send_id)
    if record is None:
        raise LedgerError(f"The ledger has no send {send_id}.")
    return record.issue + (REHEARSAL if record.scope == "rehearsal" else "")


def _report(
    ledger: PostgresLedger,
    snapshot: Snapshot,
    send_id: int,
    key: str,
    queue: list[tuple[str, str]],
    said: list[str],
    stopped: bool,
    quota: SharedQuota | None,
) -> SendReport:
    """The run as the ledger has it, its workers among it; stopped by the relay's daily
    quota when that is used up and people are left (the same command carries on)."""
    mine = {e for e, _ in queue}
    outcomes: dict[str, int] = {}
    failures: list[tuple[str, Outcome]] = []
    left = 0
    for d in ledger.deliveries(key):
        if d.email not in mine:
            continue
        if d.state in ("pending", "sending"):
            left += 1
            continue
        outcomes[d.state] = outcomes.get(d.state, 0) + 1
        if d.state != "sent":
            failures.append((d.address or d.email, Outcome(d.state, d.code, d.detail)))  # type: ignore[arg-type]
    full = None
    if left and not stopped and quota is not None:
        reached = quota.report(ledger)
        full = reached if reached.used >= reached.per_day else None
    cut = stopped or (left > 0 and full is None)
    record = ledger.finish(send_id, interrupted=cut)
    report = SendReport(snapshot, record, outcomes, failures, interrupted=cut, quota=full)
    report.workers = ledger.workers(send_id)
    report.worker_errors = said + [
        f"worker {w.describe()} stopped answering: the people it had claimed were put back "
        "for the others"
        + (
            f", and the {w.unknown} it had handed to the server were sent again (they may "
            "have it twice)"
            if w.unknown
            else ""
        )
        for w in report.workers
        if w.state == "gone"
    ]
    return report


# -- newsletter worker: one sender of a run ---------------------------------------------


@dataclass
class WorkReport:
    worker: WorkerRecord | None
    outcomes: dict[str, int]
    reaped: list[Reaped]
    seconds: float

    @property
    def sent(self) -> int:
        return self.outcomes.get("sent", 0)


def work(
    ws: Workspace,
    issue: Path,
    *,
    send_id: int | None = None,
    lease: float = LEASE,
    batch: int | None = None,
    stop: threading.Event | None = None,
    on_done: Callable[[str, Outcome], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> WorkReport:
    """Join the running send of ``issue`` (or run ``send_id``) and send until its queue is
    empty. Raises LedgerError (NeedsDatabase with SQLite), ProblemsError, PreflightError."""
    stop = stop or threading.Event()
    with open_ledger(ws.config) as ledger:
        if not isinstance(ledger, PostgresLedger):
            raise needs_database("newsletter worker")
        target, run_id = _joined(ws, ledger, issue, send_id)
        record = ledger.send_record(run_id)
        assert record is not None
        plan = plan_send(ws, issue, record.lists)
        transport = open_transport_for(ws, plan.issue, record.transport, key=target.record.key)
        try:
            return _Worker(ws, ledger, plan, transport, target, run_id, stop, on_done, log).run(
                lease, batch
            )
        finally:
            transport.close()


def _joined(
    ws: Workspace, ledger: PostgresLedger, issue: Path, send_id: int | None
) -> tuple[Target, int]:
    """The issue as the ledger knows it, and the run to join."""
    file = ws.display(ws.config.resolve(issue) if not issue.is_absolute() else issue)
    try:
        loaded = ws.load_issue(issue)
        facts = {"date": loaded.date.isoformat(), "title": loaded.title, "slug": loaded.slug}
    except (ProblemsError, OSError):
        facts = None
    known = known_as(ledger, file=file, slug=Path(file).stem, facts=facts)
    if send_id is None and known is not None:
        send_id = ledger.running(known.key) or ledger.running(known.key + REHEARSAL)
    record = ledger.send_record(send_id) if send_id is not None else None
    if record is None or record.finished is not None:
        raise LedgerError(
            f"No send of {file} is running for a worker to join. Start it on one computer "
            "with 'newsletter send ISSUE --list NAME --workers N' (the PostgreSQL ledger), "
            "then run 'newsletter worker ISSUE' on the others while it runs."
        )
    issue_record = next((r for r in ledger.issues() if r.key == record.issue), None)
    if issue_record is None:
        raise LedgerError(f"The ledger does not know the issue {record.issue}.")
    return Target(issue_record, record.scope, False, None), record.id


class _Worker:
    def __init__(
        self,
        ws: Workspace,
        ledger: PostgresLedger,
        plan: Any,
        transport: Transport,
        target: Target,
        send_id: int,
        stop: threading.Event,
        on_done: Callable[[str, Outcome], None] | None,
        log: Callable[[str], None] | None,
    ) -> None:
        self.ws, self.ledger, self.plan, self.transport = ws, ledger, plan, transport
        self.target, self.send_id, self.stop, self.log = target, send_id, stop, log
        self.run_ = _Run(plan, ws, transport, target, Eligibility(), None, stop, None, on_done)
        self.reaped: list[Reaped] = []

    def run(self, lease: float, batch: int | None) -> WorkReport:
        run, ledger = self.run_, self.ledger
        try:
            run.secret = ready(self.plan, self.ws, self.target.scope)
            preflight(self.transport)
            run.signer = signer_for(self.ws.config)
        except DkimError as exc:
            raise PreflightError(str(exc)) from None
        run.quota = DailyQuota.of(self.transport, Clock())
        share(run, ledger)
        connections = int(getattr(getattr(self.transport, "config", None), "connections", 1))
        size = batch or max(4, 4 * connections)  # what the connections hold ahead, about
        me = ledger.join(self.target.key, self.send_id, connections, lease=lease)
        started = time.monotonic()
        by_key = {address_key(r.email): r for r in self.plan.recipients}
        hands = _Hands(run, ledger, self.send_id, self.plan.templates(self.ws), by_key, {})
        try:
            halt = Halt(self.stop)
            if run.quota is None or run.quota.open(ledger, halt):
                self.transport.send_all(
                    hands.jobs(self._claimed(hands, size, lease)),
                    on_start=hands.started,
                    on_done=hands.done,
                    stop=halt,
                )
        finally:
            seconds = time.monotonic() - started
            ledger.leave(rate=run.sum_outcomes() / seconds if seconds > 0 else 0.0)
        return WorkReport(me, dict(run.outcomes), self.reaped, time.monotonic() - started)

    def _claimed(self, hands: _Hands, size: int, lease: float) -> Iterator[tuple[str, str]]:
        """The run's people, a small batch at a time, until nobody is left to anyone."""
        ledger, run = self.ledger, self.run_
        while not self.stop.is_set():
            batch = ledger.claim(self.send_id, size)
            if batch:
                here = [(e, m) for e, m in batch if e in hands.by_key]
                for email, _ in batch:
                    if email not in hands.by_key:  # the lists differ on this computer
                        ledger.mark_failed(
                            self.target.key,
                            email,
                            "not on this computer's copy of the lists: send from the same "
                            "workspace everywhere",
                        )
                hands.private.update(run.tokens(ledger, [(e, hands.by_key[e]) for e, _ in here]))
                yield from here
                continue
            for gone in ledger.reap(self.send_id, stale_after=lease):
                self.reaped.append(gone)
                if self.log is not None:
                    self.log(
                        f"worker {gone.worker.describe()} stopped answering: its people are "
                        f"back in the queue ({len(gone.unknown)} it had handed over are sent "
                        "again)"
                    )
            if ledger.left(self.send_id) == 0:
                return
            ledger.commit()
            self.stop.wait(_IDLE)
