"""newsletter check: every problem in one or more issues, errors and warnings."""

from __future__ import annotations

from pathlib import Path

import click

from ..dkim import alignment
from ..lint import check_issue
from .common import InputError, console, count, open_workspace, show_problems


@click.command("check")
@click.argument("issues", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors (for automated checks).")
@click.pass_context
def command(ctx: click.Context, issues: tuple[Path, ...], strict: bool) -> None:
    """Check issues for mistakes before anyone sees them.

    Reports every problem at once as FILE:LINE:COL with a hint on how to fix
    it: unknown or misspelt keys, missing alt text, bad dates and links,
    audiences that are not lists, placeholders that cannot be filled. It also
    warns about things worth a second look: a subject too long for inboxes,
    HTML big enough for Gmail to clip, vague link texts, http: links.

    Exit status: 0 when there are no errors (warnings alone are fine, unless
    --strict), 1 when there are errors.

    \b
    Examples:
      newsletter check newsletters/*.yaml
      newsletter check --strict newsletters/2025-02-13-steve-kay-blog.yaml
    """
    ws = open_workspace(ctx)
    errors = warnings = 0
    settings = alignment(ws.config)  # the DKIM domain against the From address's
    show_problems(settings)
    warnings += len(settings)
    for path in issues:
        problems = check_issue(ws, path)
        show_problems(problems)
        file_errors = sum(p.severity == "error" for p in problems)
        file_warnings = len(problems) - file_errors
        errors += file_errors
        warnings += file_warnings
        if not problems:
            console.print(f"{ws.display(path)}: [green]ok[/green]")
    if errors or (strict and warnings):
        counted = count(errors, "error") + (
            f" and {count(warnings, 'warning')}" if warnings else ""
        )
        raise InputError(f"{counted} found; nothing was built or sent.")
    if warnings:
        console.print(f"{count(warnings, 'warning')}; no errors.")
