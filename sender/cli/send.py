"""newsletter send: a summary first, a confirmation, then one email per person."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..problems import ProblemsError
from ..send import SendPlan, deliver, outbox_folder, plan_send
from ..transports.eml import EmlOutbox
from ..variant import audience_key
from ..workspace import Workspace
from .common import EXIT_USAGE, InputError, console, open_workspace, show_problems

SAMPLE = 5


@click.command("send")
@click.argument("issue", type=click.Path(path_type=Path))
@click.option(
    "--list",
    "-l",
    "lists",
    multiple=True,
    required=True,
    metavar="NAME",
    help="A list to send to (a CSV file in recipients/, without .csv). Repeat for several; "
    "someone on several lists gets one email with the sections of all of them.",
)
@click.option(
    "--transport",
    type=click.Choice(["eml"]),
    help="Where the emails go. eml: one .eml file per person in the outbox folder "
    "(no server needed). Default: [send] transport in newsletter.toml.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option("--dry-run", is_flag=True, help="Show who would get what, and write nothing.")
@click.pass_context
def command(
    ctx: click.Context,
    issue: Path,
    lists: tuple[str, ...],
    transport: str | None,
    yes: bool,
    dry_run: bool,
) -> None:
    """Send an issue to one or more lists: one personal email per person.

    First shows a summary (people per list, people on several lists counted
    once, suppressed addresses, rows skipped as invalid, how many versions,
    a sample of recipients, where the emails go) and asks you to confirm.
    Anything wrong in the issue or a missing personal field stops the send
    before a single email is written.

    With the eml transport (the default), each email is saved as a .eml file
    under the outbox folder, ready to open in Thunderbird, Apple Mail or
    Outlook. Running the same send again writes identical files.

    \b
    Examples:
      newsletter send newsletters/2025-02-13-steve-kay-blog.yaml --list headteachers
      newsletter send ISSUE.yaml -l headteachers -l managers --dry-run
      newsletter send ISSUE.yaml -l all-staff --yes
    """
    ws = open_workspace(ctx)
    chosen = transport or ws.config.transport
    if chosen != "eml":
        raise click.UsageError(
            f"the '{chosen}' transport is not available yet; use --transport eml, "
            'or set [send] transport = "eml" in newsletter.toml'
        )
    try:
        plan = plan_send(ws, issue, lists)
    except ProblemsError as exc:
        show_problems(exc.problems)
        raise InputError(
            "nothing was sent. Fix the problems above and run the command again."
        ) from None
    folder = outbox_folder(ws, plan.issue)
    show_summary(ws, plan, folder)
    if not plan.recipients:
        raise InputError("nobody to send to on these lists; nothing was sent.")
    if dry_run:
        console.print("[yellow]Dry run:[/yellow] nothing was written.")
        return
    if not yes:
        if not sys.stdin.isatty():
            console.print(
                "Not sending: there is no terminal to ask for confirmation. "
                "Add --yes to send without asking."
            )
            ctx.exit(EXIT_USAGE)
        if not click.confirm(f"Send to {len(plan.recipients)} people?", default=False):
            console.print("Nothing was sent.")
            return

    outbox = EmlOutbox(folder)
    progress = Progress(
        TextColumn("Writing emails"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("send", total=len(plan.recipients))
            result = deliver(plan, ws, outbox, on_message=lambda r, w: progress.advance(task))
    except OSError as exc:
        raise InputError(
            f"could not write to {folder}: {exc.strerror or exc}. "
            "Check there is space on the disk and that you may write there; "
            "running the same command again rewrites every file."
        ) from None
    console.print(
        f"[green]Done:[/green] {result.sent} email(s) written to {escape(str(folder))}/ "
        f"({len(plan.variants)} version(s))."
    )


def show_summary(ws: Workspace, plan: SendPlan, folder: Path) -> None:
    sel = plan.selection
    show_problems(sel.problems)
    table = Table(title=f"Sending “{escape(plan.issue.title)}”", title_justify="left")
    table.add_column("list")
    table.add_column("people", justify="right")
    table.add_column("suppressed", justify="right")
    table.add_column("duplicates", justify="right")
    table.add_column("invalid rows skipped", justify="right")
    for name, report in sel.reports.items():
        table.add_row(
            name,
            str(report.valid),
            str(report.suppressed),
            str(report.duplicates),
            str(report.invalid),
        )
    console.print(table)
    console.print(
        f"{len(plan.recipients)} people in all; {sel.on_several} on several lists get one "
        f"email each, with the sections of all their lists."
    )
    if sel.conflicts:
        console.print(
            f"{len(sel.conflicts)} field(s) differ between lists for the same person; "
            "the list named first wins (see 'newsletter lists')."
        )
    versions = ", ".join(f"{k}: {n}" for k, n in sorted(plan.counts_by_variant().items()))
    console.print(f"{len(plan.variants)} version(s): {escape(versions)}")
    console.print("For example:")
    for r in plan.recipients[:SAMPLE]:
        name = f"{r.name} " if r.name else ""
        key = audience_key(frozenset(r.lists))
        console.print(f"  {escape(name)}<{escape(r.email)}>  ({escape(key)})")
    console.print(f"Emails go to: {escape(ws.display(folder))}/ (one .eml file per person)")
