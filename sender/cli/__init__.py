"""The ``newsletter`` command: a thin shell over the library.

Each command lives in its own module here, parses options, calls the library
and prints. Library errors (ProblemsError, WorkspaceNotFound, …) become one
clear message and an exit code; no traceback reaches the user for anything
they could have caused.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import __version__
from .common import EXIT_BUG, InputError, console_err


class _Commands(click.Group):
    """Library errors every command may meet, said once here."""

    def invoke(self, ctx: click.Context) -> object:
        from ..ledger import LedgerError

        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            raise InputError(str(exc)) from None


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Newsletter folder (holding newsletter.toml). Default: the current folder or the "
    "nearest one above it.",
)
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """Write a newsletter issue once, send each list its own sections.

    \b
    A newsletter folder (newsletter init makes one) holds:
      newsletter.toml   who it is from, where the archive lives, how to send
      newsletters/      one YAML file per issue
      templates/        the looks (blog, briefing)
      recipients/       one CSV file per list (headteachers.csv, …)

    \b
    Typical use, in the example folder that comes with newsletter-sender:
      newsletter check newsletters/*.yaml
      newsletter preview newsletters/2025-02-13-steve-kay-blog.yaml
      newsletter send newsletters/2025-02-13-steve-kay-blog.yaml --list headteachers
    """
    ctx.obj = workspace


def _register() -> None:
    from . import archive, build, check, import_, ledger, lists, preview, send, status

    for module in (check, build, lists, send, status, archive, preview, import_, ledger):
        cli.add_command(module.command)
    cli.add_command(archive.history)
    from . import inbox, suppressed  # the bounce mailbox, and who is not sent to

    for module in (inbox, suppressed):
        cli.add_command(module.command)
    from . import dns  # the records to publish for [dkim] and the relays

    cli.add_command(dns.command)
    from . import serve  # the archive and the unsubscribe pages, on the web

    cli.add_command(serve.command)
    from . import worker  # joins a send in progress (the PostgreSQL ledger)

    cli.add_command(worker.command)
    from . import init  # a new newsletter folder

    cli.add_command(init.command)


def main() -> None:
    try:
        cli.main(prog_name="newsletter", standalone_mode=True)
    except Exception as exc:  # a bug of ours: say so plainly, details on request
        if os.environ.get("NEWSLETTER_DEBUG"):
            raise
        console_err.print(
            f"[red]Something went wrong inside newsletter[/red] ({type(exc).__name__}: {exc}).\n"
            "This is a fault in the program, not in your files. Run the command again with "
            "NEWSLETTER_DEBUG=1 set to see the details, and send them to whoever looks after it."
        )
        sys.exit(EXIT_BUG)


_register()
