"""newsletter init, the looks shipped inside the package, and the wheel in a fresh venv.

The last test is what a new user does: build the wheel, ``pip install`` it into a new
virtual environment (its dependencies from the package index, at the versions the tests
use), and in an empty folder run ``newsletter init && newsletter check
newsletters/*.yaml && newsletter send newsletters/*.yaml --list staff --yes``. It prints
how long that took from the install to the first .eml (pytest -s).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from conftest import REPO, Cli

from sender.config import load_config, options
from sender.render import SHIPPED_TEMPLATES, template_names
from sender.scaffold import SECTIONS
from sender.workspace import Workspace

LOOKS = ["blog", "briefing"]


def test_init_makes_a_folder_that_checks_and_sends(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "staff-news"
    made = cli.at(None)("init", folder)
    assert made.exit_code == 0, made.output
    assert "A newsletter folder is ready" in made.output
    [issue] = (folder / "newsletters").glob("*.yaml")
    assert f"newsletter send newsletters/{issue.name} --list staff" in made.output
    assert sorted(p.name for p in (folder / "templates").iterdir()) == [
        "blog.mjml.j2",
        "blog.txt.j2",
        "briefing.mjml.j2",
        "briefing.txt.j2",
    ]
    assert (folder / ".gitignore").read_text(encoding="utf-8").count("outbox/") == 1

    checked = cli.at(folder)("check", issue)
    assert checked.exit_code == 0, checked.output
    assert "error:" not in checked.output
    sent = cli.at(folder)("send", issue, "--list", "staff", "--yes")
    assert sent.exit_code == 0, sent.output
    emails = sorted((folder / "outbox").glob("*/*.eml"))
    assert [p.name for p in emails] == [
        "alex.morgan@example.org.eml",
        "jo.evans@example.org.eml",
        "priya.shah@example.org.eml",
    ]
    # The headteachers' section and its column: only on the headteachers' list.
    sent = cli.at(folder)("send", issue, "--list", "headteachers", "--yes")
    assert sent.exit_code == 0, sent.output
    head = next((folder / "outbox").glob("*/head@oakfield-primary.example.org.eml"))
    msg = email.message_from_bytes(head.read_bytes(), policy=email.policy.default)
    plain = msg.get_body(("plain",))
    assert plain is not None
    assert "Oakfield Primary School is filled in" in " ".join(plain.get_content().split())


def test_the_starter_settings_load_and_describe_every_setting_of_their_sections(
    cli: Cli, tmp_path: Path
) -> None:
    assert cli.at(None)("init", tmp_path).exit_code == 0
    text = (tmp_path / "newsletter.toml").read_text(encoding="utf-8")
    config = load_config(tmp_path)
    assert (config.name, config.transport, config.images_mode) == ("Staff News", "eml", "embed")
    assert config.sender == "Staff News <news@example.org>"
    for option in options():
        if option.section in SECTIONS:
            assert f"\n{option.key} = " in text or f"\n# {option.key} = " in text, option.where
    # Every commented-out example is a setting that loads as it is.
    uncommented = re.sub(r"^# (?=[a-z_]+ = )", "", text, flags=re.M)
    assert tomllib.loads(uncommented)["smtp"]["auth"] == "microsoft"
    assert all(len(line) <= 80 for line in text.splitlines())


def test_init_writes_over_nothing(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "recipients").mkdir()
    (tmp_path / "recipients" / "staff.csv").write_text("email\nme@example.org\n", "utf-8")
    again = cli.at(None)("init", tmp_path)
    assert again.exit_code == 1
    assert "already has recipients/staff.csv" in again.output
    assert "writes over nothing" in again.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["recipients", "staff.csv"]
    assert (tmp_path / "recipients" / "staff.csv").read_text("utf-8") == "email\nme@example.org\n"


def test_a_folder_without_templates_uses_the_shipped_looks(tmp_path: Path) -> None:
    (tmp_path / "newsletter.toml").write_text('[newsletter]\nname = "N"\n', "utf-8")
    issue = tmp_path / "newsletters" / "one.yaml"
    issue.parent.mkdir()
    issue.write_text(
        "title: One\ndate: 2025-03-06\ntemplate: briefing\nnumbered: true\n"
        "sections:\n  - heading: Only\n    body: Words.\n",
        "utf-8",
    )
    ws = Workspace.open(tmp_path)
    assert ws.templates == LOOKS == template_names(SHIPPED_TEMPLATES)
    html = ws.renderer.variant(ws.load_issue(issue), frozenset()).html
    assert '<span style="color: #5b2a86;">1.</span> Only' in html  # the briefing's number


def test_a_folders_own_template_overrides_the_shipped_one_by_name(workspace: Path) -> None:
    own = workspace / "templates" / "blog.mjml.j2"
    own.write_text(own.read_text("utf-8").replace("#0b4f6c", "#8a1538"), "utf-8")
    (workspace / "templates" / "poster.mjml.j2").write_text(own.read_text("utf-8"), "utf-8")
    (workspace / "templates" / "poster.txt.j2").write_text('{% extends "_base.txt.j2" %}\n')
    ws = Workspace.open(workspace)
    assert ws.templates == ["blog", "briefing", "poster"]
    issue = ws.load_issue(REPO / "newsletters" / "2025-02-13-steve-kay-blog.yaml")
    html = ws.renderer.variant(issue, frozenset()).html
    assert "background:#8a1538" in html and "background:#0b4f6c" not in html
    shipped = Workspace.open(REPO).renderer.variant(issue, frozenset()).html
    assert "background:#0b4f6c" in shipped


def test_an_issue_without_template_gets_the_first_look(workspace: Path) -> None:
    path = workspace / "newsletters" / "no-look.yaml"
    path.write_text("title: T\ndate: 2025-03-06\nsections:\n  - heading: H\n", "utf-8")
    ws = Workspace.open(workspace)
    assert ws.load_issue(path).template == "blog"
    ws.renderer.variant(ws.load_issue(path), frozenset())  # and it renders


@pytest.mark.slow
def test_the_wheel_in_a_fresh_venv_inits_checks_and_sends(tmp_path: Path) -> None:
    """pip install of the built wheel, then the three commands of a first go, in an
    empty folder, nothing of this checkout on the path."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "sender", source / "sender", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source])
    [wheel] = dist.glob("newsletter_sender-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    started = time.monotonic()
    constraints = REPO / "requirements" / "constraints.txt"
    run([venv / "bin" / "pip", "install", "-q", "-c", constraints, wheel])
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    first_go = (
        "newsletter init && newsletter check newsletters/*.yaml && "
        "newsletter send newsletters/*.yaml --list staff --yes"
    )
    done = subprocess.run(
        ["bash", "-c", first_go], cwd=empty, env=env, capture_output=True, text=True, timeout=300
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    emails = sorted(empty.glob("outbox/*/*.eml"))
    assert len(emails) == 3, done.stdout
    print(f"pip install of the wheel to the first .eml: {took:.1f} s")
    # The program that ran was the wheel's, with its looks from inside the package.
    where = run(
        [venv / "bin" / "python", "-c", "import sender; print(sender.__file__)"], empty, env
    )
    assert where.startswith(str(venv)), where
    html = email.message_from_bytes(emails[0].read_bytes(), policy=email.policy.default)
    body = html.get_body(("html",))
    assert body is not None and "Our first newsletter" in body.get_content()


def run(argv: list[object], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
