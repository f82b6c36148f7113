"""newsletter status: what happened to whom, per list, from the ledger."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from ..audiences import key_lists
from ..config import Config
from ..ledger import (
    REHEARSAL,
    STATES,
    Delivery,
    Suppression,
    by_list,
    iter_failures,
    read_ledger,
)
from ..ledger.identity import known_as
from ..ledger.postgres import PostgresLedger, WorkerRecord
from ..lists import select
from ..problems import ProblemsError
from ..recipient import address_key
from .common import console, count, open_workspace, print_table

if TYPE_CHECKING:
    from ..send import SendReport


@click.command("status")
@click.argument("issue", type=click.Path(path_type=Path))
@click.option(
    "--failed", is_flag=True, help="Only list the addresses that failed or were deferred."
)
@click.pass_context
def command(ctx: click.Context, issue: Path, failed: bool) -> None:
    """Show what happened to an issue's emails: per list, how many are pending,
    sent, deferred, failed or unknown, and each failure with the mail server's answer.

    Deferred emails (the server said "try later") are sent by running the same
    send command again; failed ones (the server refused them) need
    --retry-failed once the address is fixed; unknown ones (the server took
    the message and never answered: they may have arrived) are sent again only
    with --retry-unknown. Copies saved to the outbox as a rehearsal are shown
    apart: they were not sent.

    \b
    Examples:
      newsletter status newsletters/2025-02-13-steve-kay-blog.yaml
      newsletter status newsletters/2025-02-13-steve-kay-blog.yaml --failed
    """
    ws = open_workspace(ctx)
    file = ws.display(ws.config.resolve(issue) if not issue.is_absolute() else issue)
    try:
        loaded = ws.load_issue(issue)
        facts = {"date": loaded.date.isoformat(), "title": loaded.title, "slug": loaded.slug}
    except (ProblemsError, OSError):
        facts = None  # a file being edited, or gone: its name alone can still find it
    with read_ledger(ws.config) as ledger:
        record = known_as(ledger, file=file, slug=Path(file).stem, facts=facts)
        rows = ledger.deliveries(record.key) if record else []
        saved = ledger.deliveries(record.key + REHEARSAL) if record else []
        holders = [h for h in ledger.holders() if record and h.issue.startswith(record.key)]
        workers = _workers(ledger, [h.issue for h in holders])
        bounced = ledger.bounced(record.key) if record else {}
        sent_to = sorted(
            {n for s in ledger.sends() if record and s.issue == record.key for n in s.lists}
        )
        suppressions = ledger.suppressions()
    if not rows and not saved:
        console.print(f"{escape(file)} has not been sent to anyone yet.")
        return
    assert record is not None
    problems = list(iter_failures(rows))
    if failed:
        for d in problems:
            console.print(d.address or d.email)
        return
    shown = f"{record.key}" + (f" (from {record.file})" if record.file else "")
    for h in holders:
        console.print(f"[yellow]Being sent now[/yellow] by {escape(h.describe())}.")
    if workers:
        _worker_table("Its workers", workers)
    if rows:
        _table(escape(shown), rows, bounced)
    if saved:
        _table(f"{escape(record.key)}: saved to the outbox (a rehearsal, not sent)", saved, {})
    _not_sent_to(ws.config, sent_to, suppressions)
    sending = sum(1 for d in rows if d.state == "sending")
    if sending:
        console.print(
            f"{sending} were being sent when a run stopped: the server's answer is "
            "unknown. Running the send command again sends them again."
        )
    unknown = sum(1 for d in rows if d.state == "unknown")
    if unknown:
        console.print(
            f"{unknown} were taken by the mail server, which never answered: they may have "
            "arrived. Ask one of them; to send them again anyway, run the send command with "
            "--retry-unknown."
        )
    for d in problems:
        answer = escape(f"{d.code} {d.detail}" if d.code else d.detail)
        console.print(
            f"  {escape(d.address or d.email)}: {d.state} after {count(d.attempts, 'attempt')}: "
            f"{answer}"
        )


def _workers(ledger: object, issues: list[str]) -> list[WorkerRecord]:
    """The workers of the running sends of these keys (a PostgreSQL ledger has them)."""
    if not isinstance(ledger, PostgresLedger):
        return []
    runs = [run for issue in issues if (run := ledger.running(issue)) is not None]
    return [w for run in runs for w in ledger.workers(run)]


def _worker_table(title: str, workers: list[WorkerRecord]) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("computer", "process", "connections", "sent", "rate", "last heartbeat", "state"):
        table.add_column(name, justify="right" if name not in ("computer", "state") else "left")
    for w in workers:
        state = {"running": "sending", "done": "finished", "gone": "lost: people put back"}
        table.add_row(
            escape(w.host),
            str(w.pid),
            str(w.connections),
            str(w.sent),
            f"{w.rate:.0f}/s",
            f"{w.age:.0f} s ago",
            state.get(w.state, w.state) + (f", {w.unknown} sent again" if w.unknown else ""),
        )
    console.print(table)


def show_workers(report: SendReport) -> None:
    """After send --workers: who sent how much, and what went wrong with any worker."""
    if report.workers:
        _worker_table("Workers", report.workers)
    for line in report.worker_errors:
        console.print(f"[yellow]{escape(line)}[/yellow]")


def _table(title: str, rows: list[Delivery], bounced: dict[str, str]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("list")
    for state in STATES:
        table.add_column(state, justify="right")
    table.add_column("bounced", justify="right")  # after it was sent: from 'newsletter inbox'
    for name, counts in sorted(by_list(rows).items()):
        back = sum(1 for d in rows if d.email in bounced and name in key_lists(d.lists))
        table.add_row(name, *(str(counts[s]) for s in STATES), str(back))
    totals = {s: sum(1 for d in rows if d.state == s) for s in STATES}
    back = sum(1 for d in rows if d.email in bounced)
    table.add_row(
        "[bold]all lists[/bold]",
        *(f"[bold]{totals[s]}[/bold]" for s in STATES),
        f"[bold]{back}[/bold]",
    )
    print_table(table)


def _not_sent_to(config: Config, lists: list[str], suppressions: list[Suppression]) -> None:
    """Who on the issue's lists the ledger kept it from, and why (bounces, unsubscribes)."""
    if not lists or not suppressions:
        return
    try:
        people = select(config.recipients_dir, config.root, lists).recipients
    except ProblemsError:
        return
    on_lists = {address_key(r.email): r.lists for r in people}
    held = [
        s
        for s in suppressions
        if s.email in on_lists and any(s.covers(n) for n in on_lists[s.email])
    ]
    if not held:
        return
    reasons = Counter(s.reason for s in held)
    said = ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items()))
    console.print(
        f"{len(held)} on these lists are not sent to, as the ledger says ({escape(said)}); "
        "'newsletter suppressed' lists them."
    )
