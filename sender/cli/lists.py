"""``newsletter lists``: check the recipient lists and show what each holds."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from ..ledger import read_ledger
from ..lists import SUPPRESSED, Selection, apply_suppressions, list_names, select
from ..problems import ProblemsError
from .common import InputError, console, count, print_table, show_problems, workspace_config

SHOWN_CONFLICTS = 10
SHOWN_RECIPIENTS = 5


@click.command("lists")
@click.option(
    "--list",
    "-l",
    "names",
    multiple=True,
    metavar="NAME",
    help="Show this list in detail (its columns and first few people). Repeat it to "
    "see several lists merged in the order you name them, as `send` would.",
)
@click.pass_context
def command(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Check the recipient lists in recipients/ and count what each holds.

    Each recipients/NAME.csv is a list called NAME. Its first row names the
    columns; one must be 'email', the others (first_name, school, …) can be
    used as placeholders in an issue. Anyone in recipients/suppressed.csv is
    never sent to.

    For each list it shows the rows that are valid, invalid, duplicates and
    suppressed, then every bad row as file:line: reason. It exits with 1 when
    any row has an error, 0 when there are only warnings.

    \b
    Examples:
      newsletter lists
      newsletter lists --list headteachers
      newsletter lists --list headteachers --list managers
    """
    config = workspace_config(ctx)
    recipients_dir = config.recipients_dir
    chosen = list(names) or list_names(recipients_dir)
    if not chosen:
        console.print(
            "No lists yet. Add a CSV file per list to recipients/ (e.g. "
            "recipients/headteachers.csv) whose first row names the columns, one of them 'email'."
        )
        return
    try:
        selection = select(recipients_dir, config.root, chosen)
        # Bounces and unsubscribes the ledger holds count as suppressed too.
        with read_ledger(config) as ledger:
            apply_suppressions(selection, ledger.suppressions())
    except ProblemsError as exc:
        raise click.BadParameter(
            "; ".join(f"{p.message}" + (f" ({p.hint})" if p.hint else "") for p in exc.problems),
            param_hint="'--list'",
        ) from None

    _show_table(selection)
    if names:
        _show_details(selection)
    _show_merge(selection, named=bool(names))
    show_problems(selection.problems, config.root)

    errors = len(selection.errors)
    warnings = len(selection.warnings)
    if errors:
        raise InputError(
            f"{count(errors, 'problem')} must be fixed"
            + (f" ({count(warnings, 'warning')} too)" if warnings else "")
            + ": correct the rows named above and run `newsletter lists` again."
        )
    if warnings:
        console.print(
            f"[yellow]{count(warnings, 'warning')}[/yellow]: the lists can be used, "
            "but look at the rows named above."
        )
    else:
        console.print("[green]All rows are fine.[/green]")


def _show_table(selection: Selection) -> None:
    table = Table(title="Recipient lists", title_justify="left")
    table.add_column("list")
    for heading in ("rows", "valid", "invalid", "duplicates", "suppressed"):
        table.add_column(heading, justify="right")
    for name, report in selection.reports.items():
        table.add_row(
            escape(name),
            str(report.rows),
            str(report.valid),
            f"[red]{report.invalid}[/red]" if report.invalid else "0",
            f"[yellow]{report.duplicates}[/yellow]" if report.duplicates else "0",
            str(report.suppressed),
        )
    print_table(table)
    console.print(
        f"{count(selection.suppressed, 'address', 'addresses')} in recipients/{SUPPRESSED}.csv "
        f"{'is' if selection.suppressed == 1 else 'are'} never sent to. "
        f"{count(len(selection.recipients), 'person', 'people')} would get the newsletter."
    )


def _show_details(selection: Selection) -> None:
    for name, report in selection.reports.items():
        console.print()
        console.print(
            f"[bold]{escape(name)}[/bold]: {escape(report.file)}, {report.encoding}; "
            f"columns: {escape(', '.join(report.columns) or '(none)')}"
        )
        for person in report.recipients[:SHOWN_RECIPIENTS]:
            shown = f"{person.name} <{person.email}>" if person.name else person.email
            console.print(f"  {escape(shown)}")
        if report.valid > SHOWN_RECIPIENTS:
            console.print(f"  … and {report.valid - SHOWN_RECIPIENTS} more")


def _show_merge(selection: Selection, *, named: bool) -> None:
    if len(selection.names) < 2:
        return
    order = ", then ".join(selection.names)
    console.print()
    console.print(
        f"On several lists: {count(selection.on_several, 'person', 'people')}, "
        "each sent one message. When someone is on several lists and they disagree on "
        f"a field, the value from the list named first wins (here {escape(order)}"
        + ("" if named else ", alphabetical; name the lists with --list to choose")
        + ")."
    )
    if selection.conflicts:
        n = len(selection.conflicts)
        console.print(f"{count(n, 'field')} {'differs' if n == 1 else 'differ'} between lists:")
        for conflict in selection.conflicts[:SHOWN_CONFLICTS]:
            console.print(f"  {escape(str(conflict))}", soft_wrap=True)
        if len(selection.conflicts) > SHOWN_CONFLICTS:
            console.print(f"  … and {len(selection.conflicts) - SHOWN_CONFLICTS} more")
