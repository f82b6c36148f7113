"""newsletter status: what happened to whom, per list, from the ledger."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..issue import slug_for
from ..ledger import STATES, by_list, iter_failures, read_ledger
from .common import console, open_workspace


@click.command("status")
@click.argument("issue", type=click.Path(path_type=Path))
@click.option(
    "--failed", is_flag=True, help="Only list the addresses that failed or were deferred."
)
@click.pass_context
def command(ctx: click.Context, issue: Path, failed: bool) -> None:
    """Show what happened to an issue's emails: per list, how many are pending,
    sent, deferred or failed, and each failure with the mail server's answer.

    Deferred emails (the server said "try later") are sent by running the same
    send command again; failed ones (the server refused them) need
    --retry-failed once the address is fixed.

    \b
    Examples:
      newsletter status newsletters/2025-02-13-steve-kay-blog.yaml
      newsletter status newsletters/2025-02-13-steve-kay-blog.yaml --failed
    """
    ws = open_workspace(ctx)
    slug = slug_for(issue)
    with read_ledger(ws.config) as ledger:
        rows = ledger.deliveries(slug)
    if not rows:
        console.print(f"{escape(ws.display(issue))} has not been sent to anyone yet.")
        return
    problems = list(iter_failures(rows))
    if failed:
        for d in problems:
            console.print(d.email)
        return
    table = Table(title=f"{escape(slug)}", title_justify="left")
    table.add_column("list")
    for state in STATES:
        table.add_column(state, justify="right")
    for name, counts in sorted(by_list(rows).items()):
        table.add_row(name, *(str(counts[s]) for s in STATES))
    totals = {s: sum(1 for d in rows if d.state == s) for s in STATES}
    table.add_row("[bold]everyone[/bold]", *(f"[bold]{totals[s]}[/bold]" for s in STATES))
    console.print(table)
    if totals["sending"]:
        console.print(
            f"{totals['sending']} were being sent when a run stopped: the server's answer is "
            "unknown. Running the send command again sends them again."
        )
    for d in problems:
        answer = escape(f"{d.code} {d.detail}" if d.code else d.detail)
        console.print(f"  {escape(d.email)}: {d.state} after {d.attempts} attempt(s): {answer}")
