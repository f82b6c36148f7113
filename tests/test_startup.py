"""The ``newsletter`` command starts quickly: each command's module is imported only
when that command runs, and ``--help`` lists them all without importing any.

No times are measured here (``benchmarks/bench_startup.py`` does, by hand): these
tests hold what makes the start quick (which modules a run imports), and that the
quick ``--help`` says exactly what click would say with every command loaded."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import REPO

import sender.cli
from sender.cli import COMMANDS, cli

HEAVY = ("rich", "email_validator", "markdown_it", "jinja2", "yaml", "mjml", "css_inline")


def loaded() -> dict[str, click.Command]:
    """Every command, imported."""
    commands = {}
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, name
        commands[name] = command
    return commands


def test_each_command_is_where_the_table_says_and_says_what_it_says() -> None:
    for name, command in loaded().items():
        assert command.name == name
        assert command.get_short_help_str(10_000) == COMMANDS[name][2], name


def test_every_command_in_the_cli_package_can_be_run() -> None:
    """A command written in sender/cli/ but left out of the table would never run."""
    reachable: set[int] = set()
    todo = list(loaded().values())
    while todo:
        command = todo.pop()
        reachable.add(id(command))
        if isinstance(command, click.Group):
            todo += command.commands.values()
    for module in pkgutil.iter_modules(sender.cli.__path__):
        found = importlib.import_module(f"sender.cli.{module.name}")
        for attribute, value in vars(found).items():
            if isinstance(value, click.Command) and value is not cli:
                assert id(value) in reachable, f"sender.cli.{module.name}.{attribute}"


def test_help_lists_the_commands_as_click_would_with_all_of_them_loaded() -> None:
    eager = click.Group(
        name="newsletter",
        commands=loaded(),
        params=cli.params,
        help=cli.help,
        context_settings=cli.context_settings,
    )
    runner = CliRunner()
    lazy_help = runner.invoke(cli, ["--help"], prog_name="newsletter")
    eager_help = runner.invoke(eager, ["--help"], prog_name="newsletter")
    assert lazy_help.exit_code == eager_help.exit_code == 0
    assert lazy_help.output == eager_help.output
    assert "  lists       Check the recipient lists" in lazy_help.output


def modules_after(workspace: Path, *args: str) -> set[str]:
    """The modules a fresh ``newsletter ARGS`` process has imported when it ends."""
    probe = (
        "import atexit, os, runpy, sys\n"
        "atexit.register(lambda: os.write(int(os.environ['PROBE_FD']),"
        " '\\n'.join(sys.modules).encode()))\n"
        "sys.argv[0] = 'newsletter'\n"
        "runpy.run_module('sender', run_name='__main__', alter_sys=True)\n"
    )
    read, write = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "PROBE_FD": str(write)}
    with subprocess.Popen(
        [sys.executable, "-c", probe, *args],
        cwd=workspace,
        env=env,
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        os.close(write)
        with os.fdopen(read, "rb") as out:
            names = out.read().decode()
        stderr = proc.stderr.read() if proc.stderr else b""
    assert proc.returncode in (0, 1), stderr
    return set(names.split("\n"))


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_imports_click_and_no_command(workspace: Path, option: str) -> None:
    imported = modules_after(workspace, option)
    assert "click" in imported
    assert not {m for m in imported if m.startswith("sender.") and m != "sender.cli"}
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


@pytest.mark.parametrize(
    ("args", "own"),
    [(["lists"], "lists"), (["check", "newsletters/2025-02-13-steve-kay-blog.yaml"], "check")],
)
def test_a_command_imports_no_other_commands_module(
    workspace: Path, args: list[str], own: str
) -> None:
    imported = modules_after(workspace, *args)
    commands = {m for m in imported if m.startswith("sender.cli.")}
    assert f"sender.cli.{own}" in commands
    assert commands <= {f"sender.cli.{own}", "sender.cli.common"}


def test_lists_loads_neither_the_renderer_nor_the_send_nor_the_database_ledger(
    workspace: Path,
) -> None:
    """Reading the lists needs the settings, the lists and the ledger's suppressions: not
    the renderer (Jinja, Markdown), the message stage, the send or the PostgreSQL ledger,
    which once came with the ledger's types and with apply_suppressions."""
    imported = modules_after(workspace, "lists")
    assert "sender.lists" in imported and "sender.ledger" in imported
    slow = {"sender.render", "sender.message", "sender.send", "sender.ledger.postgres"}
    assert not (imported & slow), imported & slow
    assert not {m for m in imported if m.split(".")[0] in ("jinja2", "markdown_it", "yaml")}
