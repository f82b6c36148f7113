"""The issue loader as a comms officer meets it: every mistake named by file:line:col.

The corpus in ``tests/data/bad_issues/`` holds one small, realistic broken
issue per kind of mistake. Each goes through the library (``load_issue``) and
through ``newsletter check``; both must report exactly the problems in the
table below, at exactly those places, with exit status 1 and no traceback.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import Result
from conftest import Cli

from sender.issue import load_issue
from sender.problems import Problem, ProblemsError

HERE = Path(__file__).resolve().parent
BAD = HERE / "data" / "bad_issues"
TEMPLATES = ("blog", "briefing")
LISTS = ("all-staff", "headteachers", "managers")


class Expect(NamedTuple):
    line: int
    col: int | None
    message: str  # a distinctive part of the message
    hint: str | None = None  # a part of the hint


# A file saved by an editor in Windows-1252: "é" is the single byte 0xE9.
# Made here rather than committed, so the repository stays UTF-8 text.
GENERATED: dict[str, bytes] = {
    "15-not-utf8.yaml": (
        "title: Summer term update\n"
        "date: 2025-07-11\n"
        "template: briefing\n"
        "sections:\n"
        "  - heading: Café opening\n"
        "    body: The new café at the Civic Centre opens in September.\n"
    ).encode("cp1252"),
}

CORPUS: dict[str, list[Expect]] = {
    "01-bad-yaml.yaml": [
        Expect(
            4,
            18,
            "not valid YAML: a ':' here makes YAML read a new 'key: value'",
            "put the whole text in quotes",
        )
    ],
    "02-tab-indentation.yaml": [
        Expect(6, 1, "a tab character is used for indentation", "YAML needs spaces, not tabs")
    ],
    "03-unknown-key.yaml": [
        Expect(4, 1, "unknown key 'colour'", "allowed here: title, date, subject")
    ],
    "04-misspelt-key.yaml": [
        Expect(7, 5, "unknown key 'headng' in section 2", "did you mean 'heading'?")
    ],
    "05-wrong-type.yaml": [
        Expect(
            6,
            3,
            "sections must be a list, not a set of 'key: value' lines",
            "start each section with '- heading: …'",
        )
    ],
    "06-missing-heading.yaml": [
        Expect(7, 5, "section 2 is missing 'heading'", "add a line 'heading: …'")
    ],
    "07-image-without-alt.yaml": [
        Expect(8, 7, "section 1 image has no alt text", "add alt: describing the picture")
    ],
    "08-unknown-template.yaml": [
        Expect(3, 11, "there is no template called 'breifing'", "did you mean 'briefing'?")
    ],
    "09-unknown-audience.yaml": [
        Expect(
            7,
            27,
            "section 1: there is no list called 'headteacher'",
            "did you mean 'headteachers'?",
        )
    ],
    # Day first, as a UK officer writes it: the hint shows the date it would be.
    "10-bad-date.yaml": [
        Expect(2, 7, "date '11/07/2025' is written day first", "as 2025-07-11 (if you mean 11 July")
    ],
    "11-empty-sections.yaml": [
        Expect(4, 11, "sections is empty", "add at least one '- heading: …'")
    ],
    "12-bad-url.yaml": [
        Expect(
            7,
            40,
            "section 1 button url 'www.inspiring-futures.example.org/book' is not a web address",
            "starting with https://",
        )
    ],
    # The line of the '{{', inside the 'body: |' block, not the line of 'body:'.
    "13-unterminated-placeholder.yaml": [
        Expect(
            9,
            18,
            "section 1 body: placeholder '{{' is never closed with '}}'",
            "{{ first_name }}",
        )
    ],
    "14-placeholder-logic.yaml": [
        Expect(8, 7, "section 1 body: '{% … %}' is template logic", "give it 'audiences'"),
        Expect(8, 52, "section 1 body: '{% … %}' is template logic", "give it 'audiences'"),
    ],
    "15-not-utf8.yaml": [
        Expect(5, 17, "is not UTF-8 text (byte 0xe9 here)", "save the file as UTF-8")
    ],
    "16-duplicate-key.yaml": [Expect(4, 1, "'title' is given twice", "keep one of them")],
    "17-empty-file.yaml": [Expect(1, 1, "the file is empty", "start from a shipped issue")],
    "18-bad-placeholder.yaml": [
        Expect(
            4,
            16,
            "greeting: '{{ First Name }}' is not a placeholder we understand",
            "field names use letters, digits and _",
        )
    ],
    "19-missing-title.yaml": [Expect(1, 1, "is missing 'title'", "add a line 'title: …'")],
    # Every mistake in the file, in file order; the misspelt 'headng' is one
    # mistake, so no second "is missing 'heading'".
    "20-several-errors.yaml": [
        Expect(2, 7, "date '2025-13-01': there is no month 13", "YYYY-MM-DD (year, month, day)"),
        Expect(3, 11, "there is no template called 'breifing'", "did you mean 'briefing'?"),
        Expect(5, 5, "unknown key 'headng' in section 1", "did you mean 'heading'?"),
        Expect(
            7,
            17,
            "section 1: there is no list called 'headteacher'",
            "did you mean 'headteachers'?",
        ),
        Expect(9, 12, "section 2 image has no alt text", "add alt:"),
        Expect(10, 41, "section 2 button url 'adoption plan' is not a web address", "https://"),
    ],
    # '>' folds the lines into one: the place must still be the line of the '{{'.
    "21-placeholder-in-folded-text.yaml": [
        Expect(8, 23, "section 1 body: placeholder '{{' is never closed", "{{ first_name }}")
    ],
}


def corpus_bytes(name: str) -> bytes:
    return GENERATED[name] if name in GENERATED else (BAD / name).read_bytes()


def problems_of(path: Path, display: str | None = None) -> list[Problem]:
    with pytest.raises(ProblemsError) as caught:
        load_issue(path, templates=TEMPLATES, lists=LISTS, display=display)
    return caught.value.problems


def flat(text: str) -> str:
    """Output with runs of whitespace as one space: rich wraps long lines at 80 columns."""
    return " ".join(text.split())


def assert_clean_exit(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


# --------------------------------------------------------------------------- the corpus


def test_corpus_on_disk_is_exactly_the_table() -> None:
    on_disk = {p.name for p in BAD.iterdir()}
    assert on_disk | set(GENERATED) == set(CORPUS)
    assert not on_disk & set(GENERATED)
    assert len(CORPUS) >= 15
    for name in on_disk:  # the committed corpus is UTF-8 text
        (BAD / name).read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_library(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(corpus_bytes(name))
    problems = problems_of(path, display=name)
    expected = CORPUS[name]
    got = [(p.line, p.col, p.message) for p in problems]
    assert len(problems) == len(expected), got
    for problem, want in zip(problems, expected, strict=True):
        assert (problem.file, problem.line, problem.col) == (name, want.line, want.col), got
        assert problem.severity == "error"
        assert want.message in problem.message
        if want.hint is not None:
            assert problem.hint is not None and want.hint in problem.hint


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_check_command(cli: Cli, name: str, workspace: Path) -> None:
    path = workspace / "newsletters" / name
    path.write_bytes(corpus_bytes(name))
    result = cli("check", path)
    assert_clean_exit(result, 1)
    out = flat(result.output)
    for want in CORPUS[name]:
        where = f"newsletters/{name}:{want.line}:" + (f"{want.col}:" if want.col else "")
        assert f"{where} error: " in out, result.output
        assert want.message in out
        if want.hint is not None:
            assert flat(want.hint) in out
    # ... and exactly what the library reports, each problem once, its hint below it.
    for problem in problems_of(path, display=f"newsletters/{name}"):
        shown = f"{problem.where}: error: {flat(problem.message)}"
        if problem.hint:
            shown += f" hint: {flat(problem.hint)}"
        assert out.count(shown) == 1, result.output
    n = len(CORPUS[name])
    assert f"{n} error{'' if n == 1 else 's'} found" in out


def test_check_reports_every_file_and_every_error(cli: Cli, workspace: Path) -> None:
    names = ["04-misspelt-key.yaml", "20-several-errors.yaml"]
    for name in names:
        shutil.copy(BAD / name, workspace / "newsletters" / name)
    shipped = workspace / "newsletters" / "2025-02-13-steve-kay-blog.yaml"
    args = [str(workspace / "newsletters" / n) for n in names]
    result = cli("check", *args, shipped)
    assert_clean_exit(result, 1)
    out = flat(result.output)
    total = 0
    for name in names:
        for want in CORPUS[name]:
            total += 1
            assert f"newsletters/{name}:{want.line}:{want.col}: error: " in out
    assert "newsletters/2025-02-13-steve-kay-blog.yaml: ok" in out
    assert f"{total} errors found" in out


def test_missing_issue_file(cli: Cli, workspace: Path) -> None:
    result = cli("check", workspace / "newsletters" / "2025-03-01-nope.yaml")
    assert_clean_exit(result, 1)
    assert "newsletters/2025-03-01-nope.yaml: error: file not found" in flat(result.output)


# --------------------------------------------------------------------------- warnings

WARNINGS_ONLY = """\
title: Half-term update
date: 2025-02-13
template: blog
sections:
  - heading: Out and About
    body: |
      I've been visiting schools and colleges during this half-term.
"""


def test_warnings_alone_exit_0_and_strict_makes_them_errors(cli: Cli, workspace: Path) -> None:
    path = workspace / "newsletters" / "2025-02-13-half-term.yaml"
    path.write_text(WARNINGS_ONLY, encoding="utf-8")
    issue = load_issue(path, templates=TEMPLATES, lists=LISTS)
    assert issue.preheader is None

    result = cli("check", path)
    assert_clean_exit(result, 0)
    out = flat(result.output)
    assert "newsletters/2025-02-13-half-term.yaml: warning: no preheader" in out
    assert "hint: add 'preheader: …'" in out
    assert "1 warning; no errors." in out
    assert ": ok" not in out

    strict = cli("check", "--strict", path)
    assert_clean_exit(strict, 1)
    out = flat(strict.output)
    assert "warning: no preheader" in out
    assert "0 errors and 1 warning found" in out


def test_shipped_issues_check_clean(cli: Cli, workspace: Path) -> None:
    shipped = sorted((workspace / "newsletters").glob("*.yaml"))
    assert len(shipped) == 2
    for path in shipped:
        issue = load_issue(path, templates=TEMPLATES, lists=LISTS)
        assert issue.sections and issue.title
    result = cli("check", "--strict", *shipped)
    assert_clean_exit(result, 0)
    for path in shipped:
        assert f"newsletters/{path.name}: ok" in result.output
    assert "warning" not in result.output


# --------------------------------------------------------------------------- YAML 1.1 pitfalls


def write(tmp_path: Path, text: str, name: str = "issue.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_guesses_stay_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "title: 2025\n"
        "date: 2025-02-13\n"
        "subject: 1.10\n"
        "preheader: null\n"
        "sections:\n"
        "  - heading: No\n"
        "    body: off\n"
        "  - heading: Yes\n"
        "    body: 0x1F\n"
        "  - heading: ~5 minutes\n"
        "    audiences: [managers]\n",
    )
    issue = load_issue(path, templates=TEMPLATES, lists=LISTS)
    assert issue.title == "2025"
    assert issue.subject == "1.10"
    assert issue.date == dt.date(2025, 2, 13)
    assert [(s.heading, s.body) for s in issue.sections] == [
        ("No", "off"),
        ("Yes", "0x1F"),
        ("~5 minutes", ""),
    ]
    assert issue.sections[2].audiences == ("managers",)


def test_quoted_date_and_numbered_words(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "title: T\ndate: '2025-02-13'\nnumbered: yes\nsections:\n  - heading: H\n",
    )
    issue = load_issue(path, templates=TEMPLATES, lists=LISTS)
    assert issue.date == dt.date(2025, 2, 13)
    assert issue.numbered is True


def test_duplicate_section_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "title: T\ndate: 2025-02-13\nsections:\n  - heading: H\n    body: one\n    body: two\n",
    )
    [problem] = problems_of(path)
    assert (problem.line, problem.col, problem.message) == (6, 5, "'body' is given twice")


# --------------------------------------------------------------------------- places


@pytest.mark.parametrize(
    ("body", "line", "col"),
    [
        # block, literal: the line of the '{{'
        ("body: |\n      First line.\n\n      Thanks, {{ first_name.\n", 8, 15),
        # block, folded: lines joined by YAML, place still exact
        ("body: >\n      First line\n      second, {{ first_name.\n", 7, 15),
        # block with a comment on the '|' line that holds braces
        ("body: |  # {{ not this\n      First line.\n      {{ oops\n", 7, 7),
        # plain text over several lines
        ("body: First line\n      and then {{ first_name.\n", 6, 16),
        # double quotes over several lines, with an escape before
        ('body: "A \\"quoted\\" word\n      and {{ first_name."\n', 6, 11),
        # single quotes with a doubled quote before
        ("body: 'It''s {{ first_name.'\n", 5, 18),
        # on the same line
        ("body: Thanks, {{ first_name.\n", 5, 19),
    ],
)
def test_placeholder_place_in_every_scalar_style(
    tmp_path: Path, body: str, line: int, col: int
) -> None:
    text = "title: T\ndate: 2025-02-13\nsections:\n  - heading: H\n    " + body
    path = write(tmp_path, text)
    [problem] = problems_of(path)
    assert "never closed" in problem.message
    assert (problem.line, problem.col) == (line, col)
    assert text.splitlines()[line - 1][col - 1 : col + 1] == "{{"


def test_non_utf8_column_counts_characters(tmp_path: Path) -> None:
    # A UTF-8 file with one line pasted from a Windows-1252 document.
    path = tmp_path / "mixed.yaml"
    path.write_bytes(
        "title: It’s the café\n".encode()
        + "date: 2025-02-13\nsections:\n  - heading: It’s the new caf".encode()
        + b"\xe9\n"
    )
    [problem] = problems_of(path)
    assert (problem.line, problem.col) == (4, 30)  # bytes: 32
    assert "byte 0xe9" in problem.message


def test_tab_after_a_key(tmp_path: Path) -> None:
    path = write(tmp_path, "title: T\ndate: 2025-02-13\nsections:\n  - heading:\tH\n")
    [problem] = problems_of(path)
    assert (problem.line, problem.col) == (4, 13)
    assert problem.message == "not valid YAML: a tab character here"
    assert problem.hint and "spaces, not tabs" in problem.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title: T\ndate: 2025-02-13\nsections:\n", [(3, 10, "sections is empty")]),
        (
            "title:\ndate:\nsections:\n  - heading:\n",
            [
                (1, 7, "title is empty"),
                (2, 6, "date is empty"),
                (4, 13, "section 1 heading is empty"),
            ],
        ),
        (
            "title: [a, b]\ndate: 2025-02-30\nsections:\n  - Out and About\n",
            [
                (1, 8, "title must be text, not a list"),
                (2, 7, "date '2025-02-30' does not exist: February has 28 days"),
                (4, 5, "section 1 must be 'heading:', 'body:' and so on, not a single value"),
            ],
        ),
        (
            "title: T\ndate: 2025-02-13\nauthor: {nmae: Steve}\nsections:\n"
            "  - heading: H\n    audiences: [everyone]\n"
            "    button: {label: Book, url: 'https://x.example.org', colour: red}\n",
            [
                (3, 10, "unknown key 'nmae' in author"),
                (6, 17, "section 1: 'everyone' is not needed in audiences"),
                (7, 57, "unknown key 'colour' in section 1 button"),
            ],
        ),
    ],
)
def test_more_mistakes(tmp_path: Path, text: str, expected: list[tuple[int, int, str]]) -> None:
    problems = problems_of(write(tmp_path, text))
    assert [(p.line, p.col, p.message) for p in problems] == expected


def test_empty_heading_hint_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "title: T\ndate: 2025-02-13\nsections:\n  - heading: ''\n")
    [problem] = problems_of(path)
    assert problem.hint == "write the section 1 heading after 'heading:'"


def test_positions_of_values(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        "title: T\ndate: 2025-02-13\nsections:\n  - heading: H\n"
        "    button: {label: Book a place, url: 'https://x.example.org/{{ id }}'}\n",
    )
    issue = load_issue(good, templates=TEMPLATES, lists=LISTS)
    assert issue.positions["title"] == (1, 8)
    assert issue.positions["sections[0].button.url"] == (5, 40)
    assert issue.sections[0].button is not None
    assert issue.sections[0].button.url == "https://x.example.org/{{ id }}"


def test_each_problem_is_one_line_of_output(cli: Cli, workspace: Path) -> None:
    name = "12-bad-url.yaml"
    shutil.copy(BAD / name, workspace / "newsletters" / name)
    result = cli("check", workspace / "newsletters" / name)
    lines = result.output.splitlines()
    assert any(
        re.fullmatch(rf"newsletters/{re.escape(name)}:7:40: error: .*is not a web address", ln)
        for ln in lines
    ), result.output
