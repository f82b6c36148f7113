"""The warnings of `newsletter check`: each rule fires on its case and not on the shipped issues."""

from __future__ import annotations

from pathlib import Path

from sender.lint import check_issue
from sender.workspace import Workspace

BASE = """title: Lint
date: 2025-01-01
template: blog
preheader: A short summary
sections:
  - heading: One
    body: |
      Some words.
"""


def warnings_for(workspace: Path, text: str) -> list[str]:
    path = workspace / "newsletters" / "lint.yaml"
    path.write_text(text, encoding="utf-8")
    problems = check_issue(Workspace.open(workspace), path)
    assert all(p.severity == "warning" for p in problems), [str(p) for p in problems]
    return [str(p) for p in problems]


def test_a_clean_issue_has_no_warnings(workspace: Path) -> None:
    assert warnings_for(workspace, BASE) == []


def test_shipped_issues_have_no_warnings(repo: Path) -> None:
    ws = Workspace.open(repo)
    for path in sorted((repo / "newsletters").glob("*.yaml")):
        assert check_issue(ws, path) == []


def test_missing_preheader(workspace: Path) -> None:
    found = warnings_for(workspace, BASE.replace("preheader: A short summary\n", ""))
    assert len(found) == 1 and "no preheader" in found[0]


def test_long_subject(workspace: Path) -> None:
    found = warnings_for(workspace, BASE + "subject: " + "x" * 79 + "\n")
    assert len(found) == 1
    assert "newsletters/lint.yaml:9:10: warning: the subject is 79 characters" in found[0]


def test_http_link_and_vague_link_text(workspace: Path) -> None:
    text = BASE + "      See [click here](http://example.org/page) for more.\n"
    found = warnings_for(workspace, text)
    assert len(found) == 2
    assert any("'click here' says nothing" in f and "lint.yaml:9:" in f for f in found)
    assert any("'http://example.org/page' uses http:" in f and "lint.yaml:9:" in f for f in found)


def test_vague_button_and_http_button(workspace: Path) -> None:
    text = BASE + "    button: {label: Click here, url: 'http://example.org/b'}\n"
    found = warnings_for(workspace, text)
    assert any("button text 'Click here'" in f for f in found)
    assert any("'http://example.org/b' uses http:" in f for f in found)


def test_html_over_gmail_clip_size(workspace: Path) -> None:
    paragraph = "Many words in a long paragraph that keeps going. " * 40
    body = "\n\n".join([paragraph] * 60)
    text = BASE.replace("      Some words.\n", "".join(f"      {ln}\n" for ln in body.split("\n")))
    found = warnings_for(workspace, text)
    assert len(found) == 4  # each list and everyone
    assert all("KB; Gmail cuts off messages over 102 KB" in f for f in found)


def test_section_for_an_empty_list(workspace: Path) -> None:
    (workspace / "recipients" / "governors.csv").write_text("email,name\n", encoding="utf-8")
    found = warnings_for(workspace, BASE + "    audiences: [governors]\n")
    assert len(found) == 1
    assert "lint.yaml:9:16: warning: section 'One' is for governors" in found[0]


def test_placeholder_no_list_can_fill(workspace: Path) -> None:
    text = BASE.replace("Some words.", 'Hello {{ nickname | default("friend") }}.')
    found = warnings_for(workspace, text)
    assert len(found) == 1
    assert "placeholder 'nickname' is not a column of any list" in found[0]
    assert "everyone will see 'friend'" in found[0]
    assert "newsletters/lint.yaml:8: warning: placeholder" in found[0]
