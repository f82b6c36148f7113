"""The newsletter command as a user meets it: help, exit codes, files written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from conftest import REPO, Cli

from sender.cli import COMMANDS
from sender.cli import cli as newsletter

pytestmark = pytest.mark.cli(catch_exceptions=False)


def commands() -> list[str]:
    # Commands load when they run (sender.cli.COMMANDS); the group holds none up front.
    return sorted(COMMANDS)


def loaded(name: str) -> click.Command:
    command = newsletter.get_command(click.Context(newsletter), name)
    assert command is not None, name
    return command


@pytest.mark.parametrize("name", commands())
def test_every_command_explains_itself(cli: Cli, name: str) -> None:
    result = cli.at(None)(name, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"'newsletter {name} --help' shows no example"
    command = loaded(name)
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


# -- the words a new user reads ------------------------------------------------------------


def test_the_top_level_help_names_files_that_exist(cli: Cli) -> None:
    result = cli.at(None)("--help")
    assert result.exit_code == 0
    named = re.findall(r"newsletters/[\w.-]+\.yaml", result.output)
    assert named, result.output
    assert [n for n in named if not (REPO / n).is_file()] == []
    assert "newsletter init" in result.output


def test_lists_counts_addresses_in_words(cli: Cli) -> None:
    result = cli("lists")
    assert result.exit_code == 0, result.output
    assert "3 addresses in recipients/suppressed.csv are never sent to" in result.output
    assert "addresss" not in result.output


def test_the_send_summary_says_what_it_knows(cli: Cli, workspace: Path) -> None:
    blog = workspace / "newsletters" / "2025-02-13-steve-kay-blog.yaml"
    one = cli("send", blog, "--list", "headteachers", "--dry-run")
    assert one.exit_code == 0, one.output
    assert "39 people in all.\n" in one.output and "several lists" not in one.output
    assert "1 version: headteachers: 39\n" in one.output
    assert "(s)" not in one.output
    many = cli("send", blog, "--list", "managers", "--list", "all-staff", "--dry-run")
    assert "149 people in all; 25 of them are on several lists and get one email each" in (
        " ".join(many.output.split())
    )
    assert "2 versions: " in many.output


def test_a_mail_server_without_encryption_is_said_so(cli: Cli, workspace: Path) -> None:
    toml = workspace / "newsletter.toml"
    text = toml.read_text("utf-8").replace('security = "starttls"', 'security = "none"')
    toml.write_text(text.replace("port = 587", "port = 25"), "utf-8")
    blog = workspace / "newsletters" / "2025-02-13-steve-kay-blog.yaml"
    result = cli("send", blog, "--list", "headteachers", "--transport", "smtp", "--dry-run")
    assert "Emails go to: the mail server smtp.riverside.example.org:25 (unencrypted)" in (
        result.output
    ), result.output
    assert "(none)" not in result.output


def test_status_totals_are_all_lists_and_no_name_is_cut_when_piped(
    cli: Cli, workspace: Path
) -> None:
    blog = workspace / "newsletters" / "2025-02-13-steve-kay-blog.yaml"
    sent = cli("send", blog, "--list", "headteachers", "--list", "managers", "--yes")
    assert sent.exit_code == 0, sent.output
    assert "Done: 64 emails saved to the outbox" in sent.output
    status = cli("status", blog)
    assert status.exit_code == 0
    rows = {line.split()[1]: line for line in status.output.splitlines() if line.startswith("│")}
    assert "headteachers" in rows and "managers" in rows, status.output
    assert "…" not in status.output
    totals = next(line for line in status.output.splitlines() if "all lists" in line)
    assert "64" in totals and "everyone" not in status.output


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2025-06-31", "date '2025-06-31' does not exist: June has 30 days"),
        ("2025-02-29", "date '2025-02-29' does not exist: 2025 is not a leap year, so February"),
        ("2025-13-02", "date '2025-13-02': there is no month 13"),
        ("13/02/2025", "date '13/02/2025' is written day first"),
    ],
)
def test_a_date_that_does_not_exist_is_said_plainly(
    cli: Cli, workspace: Path, date: str, message: str
) -> None:
    path = workspace / "newsletters" / "when.yaml"
    path.write_text(f"title: T\ndate: {date}\nsections:\n  - heading: H\n", "utf-8")
    result = cli("check", path)
    assert result.exit_code == 1
    assert f"newsletters/when.yaml:2:7: error: {message}" in result.output
    assert "2024-02-29" not in result.output  # a leap day is a day
    leap = path.read_text("utf-8").replace(date, "2024-02-29")
    path.write_text(leap, "utf-8")
    assert cli("check", path).exit_code == 0
