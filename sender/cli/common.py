"""What every command shares: finding the workspace, printing, and showing problems."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console, ConsoleOptions, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segment

from ..config import Config, WorkspaceNotFound, find_workspace, load_config
from ..problems import Problem, ProblemsError

if TYPE_CHECKING:  # imported when a command opens one: it brings the renderer with it
    from ..workspace import Workspace

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_BUG = 70  # EX_SOFTWARE

# What a terminal acts on instead of showing: escape sequences (CSI "\x1b[2J" clears the
# screen; OSC "\x1b]0;…\x07" retitles the window), then any other C0 control but tab and
# newline, DEL, C1 controls, and the bidi overrides that show text in another order.
_TERMINAL_CONTROL = re.compile(
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: parameters, then a final byte
    "|(?:\x1b[]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\\\|\x9c)?"  # OSC, DCS, …
    "|\x1b[ -/]*[0-~]?"  # any other escape
    "|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)


def terminal_safe(text: str) -> str:
    """``text`` without anything a terminal would act on rather than show."""
    return _TERMINAL_CONTROL.sub("", text)


class SafeConsole(Console):
    """A rich Console that shows text from the user's files (a name in a list, a title) as
    text: the terminal sequences in it are taken out as it is rendered, whichever command
    prints it and however (markup, tables, problems). Rich's own styles are untouched:
    they are applied after this, when the output is written."""

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not _TERMINAL_CONTROL.search(segment.text):
                yield segment
            else:
                yield Segment(terminal_safe(segment.text), segment.style)


# soft_wrap: a file:line: message line stays one line in pipes and logs.
console = SafeConsole(highlight=False, soft_wrap=True)
console_err = SafeConsole(stderr=True, highlight=False, soft_wrap=True)


class InputError(click.ClickException):
    """The user's files have errors: exit 1, after they were printed."""

    exit_code = EXIT_INPUT

    def show(self, file: object = None) -> None:  # noqa: ARG002 (click's signature)
        if self.message:
            console_err.print(f"[red]Error:[/red] {escape(self.message)}")


def open_workspace(ctx: click.Context) -> Workspace:
    """The workspace named by --workspace, or found at or above the current folder."""
    from ..workspace import Workspace

    return Workspace(workspace_config(ctx))


def workspace_config(ctx: click.Context) -> Config:
    """Only the workspace's settings: for a command that reads no issue (quicker)."""
    root = ctx.find_root().obj
    try:
        return load_config(Path(root).resolve() if root else find_workspace())
    except WorkspaceNotFound as exc:
        raise click.UsageError(str(exc)) from None
    except ProblemsError as exc:
        show_problems(exc.problems)
        raise InputError(
            "newsletter.toml has errors; fix them and run the command again."
        ) from None


def show_problems(problems: Iterable[Problem], root: Path | None = None) -> None:
    for p in problems:
        colour = "red" if p.severity == "error" else "yellow"
        where = p.where
        if root is not None:
            where = where.replace(str(root) + "/", "", 1)
        console_err.print(
            f"{escape(where)}: [{colour}]{p.severity}[/{colour}]: {escape(p.message)}"
        )
        if p.hint:
            console_err.print(f"    hint: {escape(p.hint)}")


def count(n: int, word: str, plural: str | None = None) -> str:
    """'1 email', '3 emails', '2 addresses' (``plural`` when adding an s will not do)."""
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def print_table(table: RenderableType) -> None:
    """A table as wide as it needs when the output goes to a file or a pipe (80 columns
    would cut 'headteachers' to 'headteac…'); fitted to a terminal's width."""
    if console.is_terminal:
        console.print(table)
        return
    wide = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = max(console.width, wide)
    SafeConsole(file=console.file, width=width, highlight=False, soft_wrap=True).print(table)
