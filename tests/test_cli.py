"""The newsletter command as a user meets it: help, exit codes, files written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from conftest import REPO, Cli

from sender.cli import cli as newsletter

pytestmark = pytest.mark.cli(catch_exceptions=False)


def commands() -> list[str]:
    return sorted(newsletter.commands)


@pytest.mark.parametrize("name", commands())
def test_every_command_explains_itself(cli: Cli, name: str) -> None:
    result = cli.at(None)(name, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"'newsletter {name} --help' shows no example"
    command = newsletter.commands[name]
    assert command.help and len(command.help.split()) > 15
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"option {param.opts} of '{name}' has no help text"


def test_readme_mentions_every_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name for name in commands() if f"newsletter {name}" not in readme]
    assert missing == []


def test_check_shipped_issues_ok(cli: Cli) -> None:
    result = cli.at(REPO)("check", *(REPO / "newsletters").glob("*.yaml"))
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == 2


def test_build_writes_every_audience(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    issue = workspace / "newsletters" / "2025-02-13-steve-kay-blog.yaml"
    result = cli("build", issue, "--out", out)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    audiences = ["all-staff", "everyone", "headteachers", "managers"]
    assert names == sorted(
        f"2025-02-13-steve-kay-blog.{a}.{ext}" for a in audiences for ext in ("html", "txt")
    )
    text = (out / "2025-02-13-steve-kay-blog.headteachers.txt").read_text(encoding="utf-8")
    assert "Dear colleagues," in text and "{{" not in text


def test_build_one_audience_and_a_combination(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    issue = workspace / "newsletters" / "2012-07-13-peter-duxbury-briefing.yaml"
    out = tmp_path / "out"
    result = cli("build", issue, "-a", "headteachers+managers", "-o", out)
    assert result.exit_code == 0, result.output
    built = sorted(p.name for p in out.iterdir())
    assert built == [
        "2012-07-13-peter-duxbury-briefing.headteachers+managers.html",
        "2012-07-13-peter-duxbury-briefing.headteachers+managers.txt",
    ]


def test_build_unknown_audience_is_a_usage_error(cli: Cli, workspace: Path, tmp_path: Path) -> None:
    issue = workspace / "newsletters" / "2012-07-13-peter-duxbury-briefing.yaml"
    out = tmp_path / "out"
    result = cli("build", issue, "-a", "headteacher", "-o", out)
    assert result.exit_code == 2
    assert "did you mean 'headteachers'?" in result.output
    assert not out.exists()


def test_build_bad_issue_exits_1_and_writes_nothing(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    issue = workspace / "newsletters" / "broken.yaml"
    issue.write_text("title: T\ndate: 2025-13-01\nsections: []\n", encoding="utf-8")
    result = cli("build", issue, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "newsletters/broken.yaml:2:7:" in result.output
    assert "newsletters/broken.yaml:3:11: error: sections is empty" in result.output
    assert not (tmp_path / "out").exists()


def test_no_workspace_is_a_usage_error(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli.at(None)("check", "x.yaml")
    assert result.exit_code == 2
    assert "No newsletter.toml found" in result.output


def installed_command() -> str:
    found = shutil.which("newsletter", path=str(Path(sys.executable).parent)) or shutil.which(
        "newsletter"
    )
    if not found:
        pytest.fail("the 'newsletter' command is not installed: pip install -e .")
    return found


def test_installed_entry_point_builds(workspace: Path, tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    issue = "newsletters/2025-02-13-steve-kay-blog.yaml"
    out = tmp_path / "out"
    done = subprocess.run(
        [installed_command(), "build", issue, "--out", str(out), "-a", "everyone"],
        cwd=workspace,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "2025-02-13-steve-kay-blog.everyone.html").stat().st_size > 10_000
    assert "Traceback" not in done.stderr


def test_installed_entry_point_finds_workspace_from_a_subfolder(workspace: Path) -> None:
    done = subprocess.run(
        [installed_command(), "check", "2025-02-13-steve-kay-blog.yaml"],
        cwd=workspace / "newsletters",
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout
