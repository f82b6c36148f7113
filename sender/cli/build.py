"""newsletter build: each audience's HTML and text, to look at or publish."""

from __future__ import annotations

from pathlib import Path

import click

from ..audiences import EVERYONE
from ..build import write_variants
from ..lint import placeholder_problems
from ..problems import ProblemsError, raise_errors
from ..render import Renderer, audience_sets
from .common import InputError, console, count, open_workspace, show_problems


@click.command("build")
@click.argument("issue", type=click.Path(path_type=Path))
@click.option(
    "--audience",
    "-a",
    "audiences",
    multiple=True,
    metavar="NAME",
    help="Build only for this list (repeatable). Join lists with + for people on several "
    f"(headteachers+managers); '{EVERYONE}' means every section. "
    "Default: each list, and everyone.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write to. Default: [build] out in newsletter.toml (build/).",
)
@click.pass_context
def command(ctx: click.Context, issue: Path, audiences: tuple[str, ...], out: Path | None) -> None:
    """Build an issue's HTML and plain text for each audience.

    Writes SLUG.AUDIENCE.html and SLUG.AUDIENCE.txt, where placeholders such
    as {{ first_name }} show their default (or [first_name] without one).
    Nothing is sent. Building twice gives byte-identical files.

    \b
    Examples:
      newsletter build newsletters/2025-02-13-steve-kay-blog.yaml
      newsletter build newsletters/2025-02-13-steve-kay-blog.yaml -a headteachers
      newsletter build ISSUE.yaml -a headteachers+managers --out /tmp/preview
    """
    ws = open_workspace(ctx)
    try:
        loaded = ws.load_issue(issue)
        sets = audience_sets(list(audiences), ws.lists)
        unknown = sorted({a for s in sets for a in s} - set(ws.lists))
        if unknown:
            from ..problems import did_you_mean

            hint = did_you_mean(unknown[0], [*ws.lists, EVERYONE])
            raise click.BadParameter(
                f"no list called {', '.join(unknown)}"
                + (f" ({hint})" if hint else f"; lists are: {', '.join(ws.lists)}"),
                param_hint="--audience",
            )
        # Placeholders build/ could only show as [field]: the same errors as check's.
        raise_errors(placeholder_problems(loaded, ws.list_columns(), file=ws.display(issue)))
        # Pictures beside the pages, linked relatively: a browser shows them (cid: it cannot).
        variants = Renderer(ws.config, pictures="archive").variants(loaded, sets)
    except ProblemsError as exc:
        show_problems(exc.problems)
        raise InputError(
            f"{ws.display(issue)} has errors; nothing was built. "
            "Run 'newsletter check' after fixing them."
        ) from None
    folder = ws.config.resolve(out or ws.config.build_dir) if out is None else out
    built = write_variants(loaded, variants, folder)
    for b in built:
        console.print(f"  {b.html_path}  ({b.html_bytes / 1024:.1f} KB)\n  {b.text_path}")
    console.print(f"[green]Built {count(len(built), 'version')}[/green] of {ws.display(issue)}.")
