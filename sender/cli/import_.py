"""newsletter import: a briefing as written (.txt, .docx, .eml, .msg) -> a draft YAML issue."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ..importer import BriefingError, default_output, read_briefing, write_draft
from ..problems import did_you_mean
from .common import InputError, console, console_err, count, open_workspace, show_problems


@click.command("import")
@click.argument("briefing", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    help="Where to write the issue (a .yaml file, or a folder). "
    "Default: newsletters/DATE-TITLE.yaml.",
)
@click.option(
    "--template",
    "-t",
    metavar="NAME",
    help="The look: blog or briefing. Default: briefing when the headings are numbered, else blog.",
)
@click.option("--force", is_flag=True, help="Overwrite the issue (and its pictures) if they exist.")
@click.pass_context
def command(
    ctx: click.Context, briefing: Path, out: Path | None, template: str | None, force: bool
) -> None:
    """Turn a briefing as written (plain text, Word or an email) into a draft issue.

    Reads BRIEFING (.txt, .docx from Word, a saved email .eml, or an Outlook
    .msg with the 'msg' extra) and writes a YAML issue that
    'newsletter check' accepts: the title, the date, the author, the greeting,
    an intro, one section per heading (numbered headings make a numbered
    briefing), lists, links, bold and italic, pictures (saved in images/ next
    to the issue) and the sign-off. What an email adds around a briefing (its
    headers, quoted replies, footers, a signature's phone numbers) is left out
    and listed. Whatever it was unsure about is marked '# CHECK:' in the file
    and listed here: read the draft through before sending it. It never
    overwrites a file unless you add --force.

    \b
    Examples:
      newsletter import briefing.docx
      newsletter import pasted.txt -o newsletters/2025-03-july-briefing.yaml
      newsletter import briefing.docx --template blog --force
      newsletter import "Staff briefing.eml"
    """
    ws = open_workspace(ctx)
    if template is not None and template not in ws.templates:
        hint = did_you_mean(template, ws.templates)
        raise click.BadParameter(
            f"there is no template called '{template}'"
            + (f" ({hint})" if hint else f"; templates are: {', '.join(ws.templates)}"),
            param_hint="--template",
        )
    shown = ws.display(briefing)
    try:
        draft = read_briefing(briefing, display=shown)
    except BriefingError as exc:
        raise InputError(f"{exc}. Nothing was written.") from None
    if out is None:
        target = default_output(draft, ws.config.newsletters_dir)
    elif out.is_dir():
        target = default_output(draft, out)
    else:
        target = out
    if target.suffix.lower() not in (".yaml", ".yml"):
        raise click.BadParameter(f"'{out}' must end in .yaml", param_hint="--out")
    target_shown = ws.display(target)
    try:
        written = write_draft(
            draft, target, force=force, display=target_shown, template=template, lists=ws.lists
        )
    except BriefingError as exc:
        raise InputError(str(exc)) from None

    for warning in draft.warnings:
        console_err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    console.print(f"Imported {escape(shown)} into [bold]{escape(target_shown)}[/bold]")
    for what, value in draft.summary():
        if what == "sections":
            value = f"{len(draft.sections)}" + (" (numbered)" if draft.numbered else "")
        console.print(f"  {what:<9} {escape(value)}")
        if what == "sections":
            for n, section in enumerate(draft.sections, start=1):
                console.print(f"  {'':<9}   {n}. {escape(section.heading)}")
    console.print(f"  {'template':<9} {escape(template or draft.template)}")
    for path in written[:-1]:
        console.print(f"  {'picture':<9} {escape(ws.display(path))}")
    if draft.left_out:
        console.print(
            f"Left out {count(len(draft.left_out), 'thing')} the email or the signature added "
            "(listed in the file too):"
        )
        for what in draft.left_out:
            console.print("  - " + escape(what))
    unsure = draft.unsure()
    if unsure:
        console.print(
            f"[yellow]Check {count(len(unsure), 'thing')}[/yellow] (marked '# CHECK:' in the file):"
        )
        for note in unsure:
            console.print("  - " + escape(note).replace("\n", "\n      "))

    from ..lint import check_issue

    problems = check_issue(ws, target)
    errors = [p for p in problems if p.severity == "error"]
    if errors:  # a fault of the importer's: say so, and how to go on
        show_problems(errors)
        raise InputError(
            f"the draft {target_shown} has {count(len(errors), 'error')}; fix them by hand, "
            "then run 'newsletter check'."
        )
    console.print(
        f"Next: read it through, fix what is marked CHECK, then run "
        f"'newsletter check {escape(target_shown)}'."
    )
