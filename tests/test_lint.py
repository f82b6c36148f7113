"""The warnings of `newsletter check`: each rule fires on its case and not on the shipped issues."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli

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
    assert found == [
        "newsletters/lint.yaml:8: warning: section 1: 'nickname' is not a column of the lists "
        "it goes to (all-staff, headteachers, managers), so everyone will see 'friend'\n"
        "    hint: did you mean 'name'?"
    ]


def problems_for(workspace: Path, text: str) -> list[str]:
    path = workspace / "newsletters" / "lint.yaml"
    path.write_text(text, encoding="utf-8")
    return [str(p) for p in check_issue(Workspace.open(workspace), path)]


def test_a_misspelt_placeholder_is_an_error_with_did_you_mean(workspace: Path) -> None:
    text = BASE + "    audiences: [headteachers]\n"
    found = problems_for(workspace, text.replace("Some words.", "For {{ schol }}."))
    assert found == [
        "newsletters/lint.yaml:8: error: section 1: there is no 'schol' column in the lists it "
        "goes to (headteachers)\n    hint: did you mean 'school'?"
    ]


def test_a_placeholder_some_lists_cannot_fill_is_an_error_naming_them(workspace: Path) -> None:
    """{{ school }} in a section for everyone: only headteachers.csv has that column."""
    found = problems_for(workspace, BASE.replace("Some words.", "For {{ school }}."))
    assert found == [
        "newsletters/lint.yaml:8: error: section 1: {{ school }} has no default, and "
        "all-staff, managers, which it goes to, have no 'school' column\n"
        '    hint: give it a default, as {{ school | default("…") }}, or send section 1 to '
        "headteachers only (audiences: [headteachers])"
    ]
    greeting = BASE.replace("sections:", "greeting: Dear {{ team }},\nsections:")
    assert problems_for(workspace, greeting) == [
        "newsletters/lint.yaml:5: error: the greeting: {{ team }} has no default, and "
        "headteachers, which it goes to, has no 'team' column\n"
        '    hint: give it a default, as {{ team | default("…") }}'
    ]


def test_a_placeholder_without_default_is_an_error_as_the_archive_shows_no_one(
    workspace: Path,
) -> None:
    """Every list has first_name, but build/ and the public archive are for no one: with
    no default they could only show [first_name]."""
    found = problems_for(workspace, BASE.replace("Some words.", "Hi {{ first_name }}."))
    assert found == [
        "newsletters/lint.yaml:8: error: section 1: {{ first_name }} has no default, so build/ "
        "and the archive's web copy (for no one in particular) would show [first_name]\n"
        '    hint: give it a default, as {{ first_name | default("…") }}'
    ]
    fine = BASE.replace("Some words.", 'Hi {{ first_name | default("there") }}.')
    assert problems_for(workspace, fine) == []


def test_a_send_says_the_same_before_anything_is_written(cli: Cli, workspace: Path) -> None:
    """At send time, against the lists of the send: {{ schol }} sends the user to the issue,
    not to the spreadsheet."""
    text = BASE + "    audiences: [headteachers]\n"
    path = workspace / "newsletters" / "lint.yaml"
    path.write_text(text.replace("Some words.", "For {{ schol }}."), encoding="utf-8")
    result = cli("send", path, "--list", "headteachers", "--yes")
    assert result.exit_code == 1
    assert (
        "newsletters/lint.yaml:8: error: section 1: there is no 'schol' column in the lists it "
        "goes to (headteachers)" in result.output
    )
    assert "did you mean 'school'?" in result.output
    assert "fill in the" not in result.output
    assert not (workspace / "outbox").exists()
    # Sent to headteachers only, {{ school }} has what it needs but a default.
    path.write_text(text.replace("Some words.", "For {{ school }}."), encoding="utf-8")
    result = cli("send", path, "--list", "headteachers", "--yes")
    assert result.exit_code == 1 and "{{ school }} has no default, so build/" in result.output


def test_a_heading_that_skips_a_level_is_a_warning_at_its_line(workspace: Path) -> None:
    body = "      ## Where\n\n      Here.\n\n      #### Parking\n\n      There.\n"
    found = warnings_for(workspace, BASE + body)
    assert found == [
        "newsletters/lint.yaml:13: warning: the heading '#### Parking' skips a level after "
        "'## Where'\n    hint: write '### Parking' (one # more than the heading it belongs under)"
    ]
    smaller_first = "      ### Small\n\n      # Big\n"
    found = warnings_for(workspace, BASE + smaller_first)
    assert found == [
        "newsletters/lint.yaml:9: warning: the heading '### Small' is smaller than one later "
        "in this text (#): a heading level is skipped\n    hint: start with the biggest: "
        "write '# Small'"
    ]
    assert warnings_for(workspace, BASE + "      ## A\n\n      ### B\n\n      ## C\n") == []


def test_build_refuses_a_placeholder_it_could_only_show_as_a_field_name(
    cli: Cli, workspace: Path, tmp_path: Path
) -> None:
    path = workspace / "newsletters" / "ph.yaml"
    path.write_text(
        "title: T\ndate: 2025-03-06\npreheader: P\nsections:\n  - heading: H\n"
        "    audiences: [headteachers]\n    body: For {{ school }}.\n",
        "utf-8",
    )
    result = cli("build", path, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "newsletters/ph.yaml:7: error: section 1: {{ school }} has no default" in result.output
    assert not (tmp_path / "out").exists()
    path.write_text(path.read_text("utf-8").replace("{{ school }}", '{{ school | default("x") }}'))
    assert cli("build", path, "--out", tmp_path / "out").exit_code == 0
    built = (tmp_path / "out" / "ph.headteachers.html").read_text("utf-8")
    assert "For x." in built and "[school]" not in built
