"""newsletter status: what happened to whom, per list, from the ledger."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..ledger import REHEARSAL, STATES, Delivery, by_list, iter_failures, read_ledger
from ..ledger.identity import known_as
from ..problems import ProblemsError
from .common import console, open_workspace


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
    if rows:
        _table(escape(shown), rows)
    if saved:
        _table(f"{escape(record.key)}: saved to the outbox (a rehearsal, not sent)", saved)
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
            f"  {escape(d.address or d.email)}: {d.state} after {d.attempts} attempt(s): {answer}"
        )


def _table(title: str, rows: list[Delivery]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("list")
    for state in STATES:
        table.add_column(state, justify="right")
    for name, counts in sorted(by_list(rows).items()):
        table.add_row(name, *(str(counts[s]) for s in STATES))
    totals = {s: sum(1 for d in rows if d.state == s) for s in STATES}
    table.add_row("[bold]everyone[/bold]", *(f"[bold]{totals[s]}[/bold]" for s in STATES))
    console.print(table)
