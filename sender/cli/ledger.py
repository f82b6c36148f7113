"""newsletter ledger check / recover: when the record of who got what is damaged."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ..ledger import Database, LedgerError, ledger_path
from ..ledger.location import is_database, shown
from ..ledger.move import migrate_to
from ..ledger.repair import check, recover
from ..workspace import Workspace
from .common import InputError, console, open_workspace


@click.group("ledger")
def command() -> None:
    """Look after the ledger (ledger.sqlite), the record of who has been sent what.

    \b
    Examples:
      newsletter ledger check
      newsletter ledger recover
      newsletter ledger migrate --to postgresql://news@db.example.org/newsletter
    """


def _file(ws: Workspace, what: str) -> Path:
    """The ledger file; a database is looked after by PostgreSQL's own tools."""
    where = ledger_path(ws.config)
    if isinstance(where, Database):
        raise InputError(
            f"the ledger is the PostgreSQL database {where}: '{what}' is for a ledger file. "
            "PostgreSQL looks after its own data (pg_amcheck checks it; restore a damaged "
            "database from its backups, pg_dump or the server's own)."
        )
    return where


@command.command("check")
@click.pass_context
def check_command(ctx: click.Context) -> None:
    """Check the ledger for damage with SQLite's own integrity check; changes nothing."""
    ws = open_workspace(ctx)
    path = _file(ws, "newsletter ledger check")
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
    path = _file(ws, "newsletter ledger recover")
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


@command.command("migrate")
@click.option(
    "--to",
    "url",
    required=True,
    metavar="postgresql://USER@HOST/DATABASE",
    help="The PostgreSQL database to copy the ledger into (new or empty); its password "
    "from the environment variable named by [send] ledger_password_env.",
)
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The ledger file to copy (default: [send] ledger, or ledger.sqlite).",
)
@click.pass_context
def migrate_command(ctx: click.Context, url: str, source: Path | None) -> None:
    """Copy this folder's ledger file into a PostgreSQL database, to share it.

    Every send, person, test, suppression, bounce and token goes across in
    one transaction, and each table is counted on both sides before it is
    kept; the file is left as it was. Then set [send] ledger to the
    database's address in newsletter.toml. A database that already holds
    sends is refused.
    """
    ws = open_workspace(ctx)
    if not is_database(url):
        raise click.BadParameter("give a postgresql:// address", param_hint="--to")
    if "@" in url and ":" in url.split("://", 1)[1].split("@", 1)[0]:
        raise click.BadParameter(
            f"{shown(url)} has a password in it: set it in the environment variable "
            f"{ws.config.ledger_password_env} instead",
            param_hint="--to",
        )
    if source is None:
        where = ledger_path(ws.config)
        path = where if isinstance(where, Path) else ws.config.resolve(Path("ledger.sqlite"))
    else:
        path = ws.config.resolve(source) if not source.is_absolute() else source
    try:
        moved = migrate_to(path, url, password_env=ws.config.ledger_password_env)
    except LedgerError as exc:
        raise InputError(str(exc)) from None
    counts = ", ".join(f"{n} {table}" for table, n in moved.rows.items() if n)
    console.print(
        f"[green]Copied[/green] {escape(ws.display(path))} into {escape(shown(url))}, counted "
        f"again there: {escape(counts or 'nothing yet')}. Now set, in newsletter.toml:\n"
        f'  [send]\n  ledger = "{escape(url)}"'
    )
