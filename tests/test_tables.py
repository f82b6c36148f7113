"""Tables in an issue's Markdown (GitHub style): a data table in the email, with header
cells that say scope="col", readable on a 375 px phone by scrolling inside the column
(never the page); aligned columns in the text part, or one 'Header: value' block per
row when the columns cannot fit in 76.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli

from sender.build import write_variants
from sender.markup import to_html, to_text
from sender.placeholders import fill, split
from sender.workspace import Workspace

DATES = """\
| Date | Event | Where |
|---|---|--:|
| Thursday 3 October | Open evening for *new* parents | Main hall |
| 14 October | Training day: schools closed | All schools |
"""

# Five columns and a web address: wider than a phone, and than 76 columns of text.
BOOK = "https://example.org/clubs/book-a-place-for-autumn-term"
WIDE = f"""\
| Week | Monday | Tuesday | Wednesday | Booking |
|---|---|---|---|---|
| 1 | Football training after school | Choir rehearsal | Chess club in the library | {BOOK} |
| 2 | Netball | Orchestra | Coding club | {BOOK} |
"""


def issue_with(workspace: Path, body: str) -> Path:
    path = workspace / "newsletters" / "2025-10-01-tables.yaml"
    indented = "".join(f"      {line}\n" for line in body.splitlines())
    path.write_text(
        "title: Term Dates\ndate: 2025-10-01\ntemplate: blog\npreheader: Dates for the term\n"
        "sections:\n  - heading: Key dates\n    body: |\n" + indented,
        encoding="utf-8",
    )
    return path


def test_header_cells_have_scope_and_the_alignment_asked_for() -> None:
    html = to_html(DATES)
    head = re.findall(r"<th\b[^>]*>", html)
    assert len(head) == 3 and all('scope="col"' in th for th in head)
    assert "<td" in html and 'scope="col"' not in "".join(re.findall(r"<td\b[^>]*>", html))
    # The right-aligned column: its own text-align comes after the default, so it wins.
    assert re.search(r'<th style="[^"]*text-align:left;[^"]*text-align:right;"', head[2])
    assert "<em>new</em>" in html
    # Inside a box that scrolls sideways, so the page never does.
    assert html.startswith('<div style="overflow-x:auto;')
    assert html.rstrip().endswith("</table>\n</div>")


def test_text_part_aligns_columns() -> None:
    text = to_text(DATES)
    assert text.split("\n") == [
        "Date                Event                               Where",
        "------------------  ----------------------------  -----------",
        "Thursday 3 October  Open evening for new parents    Main hall",
        "14 October          Training day: schools closed  All schools",
    ]


def test_text_part_stacks_a_table_too_wide_for_76_columns() -> None:
    text = to_text(WIDE)
    assert all(len(line) <= 76 or "https://" in line for line in text.split("\n"))
    first, second = text.split("\n\n")
    assert first.split("\n")[:2] == ["Week: 1", "Monday: Football training after school"]
    assert "Booking: https://example.org/clubs/book-a-place-for-autumn-term" in first
    assert second.startswith("Week: 2\nMonday: Netball")


def test_a_pipe_in_plain_prose_is_not_a_table() -> None:
    assert "<table" not in to_html("Either this | or that, we decide in May.")


def test_a_table_in_an_issue_passes_check_and_builds(cli: Cli, workspace: Path) -> None:
    path = issue_with(workspace, DATES)
    result = cli("check", path)
    assert result.exit_code == 0, result.output
    ws = Workspace.open(workspace)
    issue = ws.load_issue(path)
    variant = ws.renderer.variant(issue, frozenset())
    html = fill(split(variant.html, "html"), None)
    assert html.count('scope="col"') == 3
    text = fill(split(variant.text, "text"), None)
    assert "Thursday 3 October  Open evening for new parents    Main hall" in text


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("table", [DATES, WIDE], ids=["dates", "wide"])
def test_a_table_is_readable_at_375px(
    browser: Any, workspace: Path, tmp_path: Path, table: str
) -> None:
    ws = Workspace.open(workspace)
    issue = ws.load_issue(issue_with(workspace, table))
    [built] = write_variants(issue, ws.renderer.variants(issue, [frozenset()]), tmp_path)
    page = browser.new_page(viewport={"width": 375, "height": 800})
    try:
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
        )
        page.goto(built.html_path.as_uri(), wait_until="load")
        shot = tmp_path / f"table-{len(table)}.375.png"
        page.screenshot(path=str(shot), full_page=True)
        found = page.evaluate(
            """() => {
              const table = document.querySelector('thead').closest('table');
              const box = table.parentElement;
              const column = box.closest('td').getBoundingClientRect();
              const font = Math.min(...[...table.querySelectorAll('th, td')]
                .map((c) => parseFloat(getComputedStyle(c).fontSize)));
              return {
                pageScroll: document.documentElement.scrollWidth,
                view: document.documentElement.clientWidth,
                boxLeft: box.getBoundingClientRect().left,
                boxRight: box.getBoundingClientRect().right,
                columnLeft: column.left,
                columnRight: column.right,
                boxScroll: box.scrollWidth,
                boxWidth: box.clientWidth,
                overflow: getComputedStyle(box).overflowX,
                headers: [...table.querySelectorAll('thead th')].map((th) => th.scope),
                font,
              };
            }"""
        )
    finally:
        page.close()
    assert shot.stat().st_size > 0
    assert found["pageScroll"] <= found["view"], found  # the page never scrolls sideways
    assert found["columnLeft"] <= found["boxLeft"] and found["boxRight"] <= found["columnRight"]
    # It uses the column's width (less its 20 px gutters), not the width of its words.
    assert found["boxRight"] - found["boxLeft"] >= found["columnRight"] - found["columnLeft"] - 40
    assert found["overflow"] == "auto", found
    assert found["headers"] and set(found["headers"]) == {"col"}
    assert found["font"] >= 14
    if table is WIDE:  # too wide for the phone: it scrolls inside its box
        assert found["boxScroll"] > found["boxWidth"], found
