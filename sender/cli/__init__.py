"""The ``newsletter`` command: a thin shell over the library.

Each command lives in its own module here, parses options, calls the library
and prints. Library errors (ProblemsError, WorkspaceNotFound, …) become one
clear message and an exit code; no traceback reaches the user for anything
they could have caused.

A command's module is imported only when that command runs: ``newsletter
--help`` imports click and nothing else, ``newsletter lists`` what reading
lists needs, not the renderer. So ``COMMANDS`` names each command's module and
the first sentence of its help, which ``--help`` shows without importing it
(tests/test_startup.py checks the sentences against the commands themselves).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from .. import __version__

# name -> (module in sender.cli, the command in it, the first sentence of its help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("check", "command", "Check issues for mistakes before anyone sees them."),
    "build": ("build", "command", "Build an issue's HTML and plain text for each audience."),
    "init": (
        "init",
        "command",
        "Make a new newsletter folder: settings, both looks, an example issue and lists.",
    ),
    "lists": (
        "lists",
        "command",
        "Check the recipient lists in recipients/ and count what each holds.",
    ),
    "send": (
        "send",
        "command",
        "Send an issue to one or more lists: one personal email per person.",
    ),
    "status": (
        "status",
        "command",
        "Show what happened to an issue's emails: per list, how many are pending, sent, "
        "deferred, failed or unknown, and each failure with the mail server's answer.",
    ),
    "archive": ("archive", "command", "Rebuild the archive folder from what was sent."),
    "preview": (
        "preview",
        "command",
        "Look at an issue in your browser exactly as each person will get it.",
    ),
    "serve": (
        "serve",
        "command",
        "Serve the archive and each reader's unsubscribe page on the web.",
    ),
    "import": (
        "import_",
        "command",
        "Turn a briefing as written (plain text, Word or an email) into a draft issue.",
    ),
    "ledger": (
        "ledger",
        "command",
        "Look after the ledger (ledger.sqlite), the record of who has been sent what.",
    ),
    "history": (
        "archive",
        "history",
        "List every send, oldest first: issue, when, lists, how many sent and failed.",
    ),
    "inbox": (
        "inbox",
        "command",
        "Read the mailbox that bounces and unsubscribe emails come back to, and act on them.",
    ),
    "suppressed": (
        "suppressed",
        "command",
        "List everyone who is not sent to, and why: hard bounces, soft bounces on 3 issues "
        "and unsubscribes that `newsletter inbox` and the unsubscribe page recorded, and the "
        "people in recipients/suppressed.csv (kept by hand).",
    ),
    "dns": (
        "dns",
        "command",
        "Print the DNS records to publish for the From address's domain.",
    ),
    "worker": (
        "worker",
        "command",
        "Join a send of this issue that is running now, and help send it.",
    ),
}


class _Commands(click.Group):
    """The commands, each imported when it is run; library errors every command may
    meet, said once here."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 (click's)
        return sorted(COMMANDS)

    def get_command(
        self,
        ctx: click.Context,  # noqa: ARG002 (click's)
        cmd_name: str,
    ) -> click.Command | None:
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        module, name, _ = found
        command = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        assert isinstance(command, click.Command), (module, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands in ``--help``, as click makes it, from ``COMMANDS``."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        # A stand-in command shortens each sentence exactly as the real one would.
        rows = [
            (name, click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # A LedgerError can only come from a command that imported the ledger.
            errors = sys.modules.get("sender.ledger.errors")
            if errors is not None and isinstance(exc, errors.LedgerError):
                from .common import InputError

                raise InputError(str(exc)) from None
            raise


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


def main() -> None:
    try:
        cli.main(prog_name="newsletter", standalone_mode=True)
    except Exception as exc:  # a bug of ours: say so plainly, details on request
        if os.environ.get("NEWSLETTER_DEBUG"):
            raise
        from .common import EXIT_BUG, console_err

        console_err.print(
            f"[red]Something went wrong inside newsletter[/red] ({type(exc).__name__}: {exc}).\n"
            "This is a fault in the program, not in your files. Run the command again with "
            "NEWSLETTER_DEBUG=1 set to see the details, and send them to whoever looks after it."
        )
        sys.exit(EXIT_BUG)
