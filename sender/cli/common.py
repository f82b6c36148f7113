"""What every command shares: finding the workspace and showing problems."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from ..config import Config, WorkspaceNotFound
from ..problems import Problem, ProblemsError
from ..workspace import Workspace

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_BUG = 70  # EX_SOFTWARE

# soft_wrap: a file:line: message line stays one line in pipes and logs.
console = Console(highlight=False, soft_wrap=True)
console_err = Console(stderr=True, highlight=False, soft_wrap=True)


class InputError(click.ClickException):
    """The user's files have errors: exit 1, after they were printed."""

    exit_code = EXIT_INPUT

    def show(self, file: object = None) -> None:  # noqa: ARG002 (click's signature)
        if self.message:
            console_err.print(f"[red]Error:[/red] {escape(self.message)}")


def open_workspace(ctx: click.Context) -> Workspace:
    """The workspace named by --workspace, or found at or above the current folder."""
    root = ctx.find_root().obj
    try:
        return Workspace.open(Path(root) if root else None)
    except WorkspaceNotFound as exc:
        raise click.UsageError(str(exc)) from None
    except ProblemsError as exc:
        show_problems(exc.problems)
        raise InputError(
            "newsletter.toml has errors; fix them and run the command again."
        ) from None


def workspace_config(ctx: click.Context) -> Config:
    return open_workspace(ctx).config


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
