"""newsletter ledger check / recover: when the record of who got what is damaged."""

from __future__ import annotations

import click
from rich.markup import escape

from ..ledger import ledger_path
from ..ledger.repair import check, recover
from .common import InputError, console, open_workspace


@click.group("ledger")
def command() -> None:
    """Look after the ledger (ledger.sqlite), the record of who has been sent what.

    \b
    Examples:
      newsletter ledger check
      newsletter ledger recover
    """


@command.command("check")
@click.pass_context
def check_command(ctx: click.Context) -> None:
    """Check the ledger for damage with SQLite's own integrity check; changes nothing."""
    ws = open_workspace(ctx)
    path = ledger_path(ws.config)
    if not path.exists():
        console.print(f"There is no ledger yet ({escape(ws.display(path))}): nothing was sent.")
        return
    health = check(path)
    counts = ", ".join(f"{n} {table}" for table, n in health.rows.items())
    if health.ok:
        console.print(f"[green]The ledger is sound[/green]: {escape(counts)}.")
        return
    for line in health.problems:
        console.print(f"  {escape(line)}")
    raise InputError(
        f"the ledger {ws.display(path)} is damaged. 'newsletter ledger recover' saves what can "
        "be read into a new ledger and keeps the damaged file beside it."
    )


@command.command("recover")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def recover_command(ctx: click.Context, yes: bool) -> None:
    """Save what can be read of a damaged ledger into a new one.

    The damaged file is kept beside it (ledger.sqlite.damaged-DATE). People
    whose rows could not be read count as not sent: check 'newsletter
    status' for each issue before sending again.
    """
    ws = open_workspace(ctx)
    path = ledger_path(ws.config)
    if not path.exists():
        raise InputError(f"there is no ledger at {ws.display(path)} to recover.")
    if check(path).ok:
        console.print("The ledger is sound; there is nothing to recover.")
        return
    if not yes and not click.confirm(
        f"Replace {ws.display(path)} with what can be read from it (the damaged file is kept)?",
        default=False,
    ):
        console.print("Nothing was changed.")
        return
    try:
        result = recover(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    counts = ", ".join(f"{n} {table}" for table, n in result.rows.items() if n)
    console.print(
        f"[green]Recovered[/green] ({escape(result.how)}): {escape(counts)}. The damaged file "
        f"is kept as {escape(ws.display(result.damaged))}. Check 'newsletter status ISSUE' "
        "before sending again: anyone whose row was lost counts as not sent."
    )
