"""newsletter init: a new newsletter folder, ready to check and send to the outbox."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from ..scaffold import FolderExists, make_folder
from .common import InputError, console


@click.command("init")
@click.argument(
    "folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
def command(folder: Path) -> None:
    """Make a new newsletter folder: settings, both looks, an example issue and lists.

    FOLDER (default: the current folder; made if it is not there) gets
    newsletter.toml with a line on what each setting does, templates/ with
    the two looks (blog and briefing) to change as you like, an example issue
    in newsletters/, two example lists in recipients/ (staff.csv and
    headteachers.csv) and a .gitignore for what sending writes. Nothing is
    written over: if any of these files is there already, nothing is written.

    \b
    Examples:
      newsletter init
      newsletter init staff-news
    """
    try:
        made = make_folder(folder)
    except FolderExists as exc:
        names = ", ".join(str(p.relative_to(exc.root)) for p in exc.found)
        raise InputError(
            f"{exc.root} already has {names}: newsletter init writes over nothing. "
            "Run it in an empty folder, or name a new one: newsletter init FOLDER"
        ) from None
    for path in made.written:
        console.print(f"  {escape(str(path.relative_to(made.root)))}")
    issue = escape(made.issue.relative_to(made.root).as_posix())
    go = "" if folder == Path(".") else f"cd {escape(str(folder))}\n  "
    console.print(
        f"[green]A newsletter folder is ready[/green] in {escape(str(made.root))}. Next:\n"
        f"  {go}newsletter check newsletters/*.yaml\n"
        f"  newsletter preview {issue}\n"
        f"  newsletter send {issue} --list staff\n"
        + escape(
            "The send goes to outbox/ as one .eml file per person until newsletter.toml says "
            "how to send for real ([send] transport and [smtp]). Put your own name, "
            "organisation and addresses in newsletter.toml first."
        )
    )
