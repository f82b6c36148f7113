"""Render stage: golden output, seed completeness, audiences, both inliners."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import pytest
from conftest import REPO

from sender.build import write_variants
from sender.config import Config
from sender.placeholders import fill, split
from sender.render import audience_sets
from sender.workspace import Workspace

GOLDEN = REPO / "tests" / "golden"
SEEDS = REPO / "tests" / "seeds"
ISSUES = sorted((REPO / "newsletters").glob("*.yaml"))
# Headings inside sections, a picture, a button and contents, which the shipped issues lack.
RICH = REPO / "tests" / "data" / "rich" / "2025-03-06-spring-update.yaml"
SEED_FOR = {
    "2025-02-13-steve-kay-blog": "000_d054e88fefd954a7.txt",
    "2012-07-13-peter-duxbury-briefing": "002_1298972c9c446115.txt",
}
# Lines of the seeds that are two things run together by a copy and paste;
# each part must appear, the join cannot.
PASTE_ARTEFACTS = {
    "Steve Kay, Director of Schools and EmployabilityRegular Blog from the Director of Schools "
    "and Employability": [
        # The name and role end the email on lines of their own, as a letter's signature.
        "Steve Kay",
        "Director of Schools and Employability",
        "Regular Blog from the Director of Schools and Employability",
    ],
}


def norm(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def shipped() -> Workspace:
    return Workspace.open(REPO)


def build_all(ws: Workspace, out: Path) -> list[Path]:
    paths: list[Path] = []
    for issue_path in [*ISSUES, RICH]:
        issue = ws.load_issue(issue_path)
        variants = ws.renderer.variants(issue, audience_sets([], ws.lists))
        for b in write_variants(issue, variants, out):
            paths += [b.html_path, b.text_path]
    return paths


def test_golden_files(shipped: Workspace, tmp_path: Path) -> None:
    """Built output equals the reviewed copies. Regenerate on purpose with
    UPDATE_GOLDEN=1 pytest tests/test_render.py, then read the diff."""
    built = build_all(shipped, tmp_path)
    assert len(built) == 2 * (len(ISSUES) + 1) * (len(shipped.lists) + 1)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        for old in GOLDEN.iterdir():
            old.unlink()
        for path in built:
            (GOLDEN / path.name).write_bytes(path.read_bytes())
    expected = sorted(p.name for p in GOLDEN.iterdir())
    assert sorted(p.name for p in built) == expected
    for path in built:
        assert path.read_bytes() == (GOLDEN / path.name).read_bytes(), (
            f"{path.name} differs from tests/golden; if the change is intended, "
            "regenerate with UPDATE_GOLDEN=1 and review the diff"
        )


def test_building_twice_is_byte_identical(shipped: Workspace, tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in build_all(shipped, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in build_all(Workspace.open(REPO), tmp_path / "b")}
    assert first == second


def seed_units(seed: str) -> list[str]:
    """Every paragraph, list item, quote and heading of a seed, as written."""
    units: list[str] = []
    for raw in seed.split("\n"):
        line = raw.strip()
        if not line:
            continue
        line = re.sub(r"^\d+\.\s+", "", line)  # numbered headings: the template numbers them
        line = re.sub(r"^•\s*", "", line)  # bullets: the text part uses '- '
        units += PASTE_ARTEFACTS.get(norm(line), [line])
    return units


@pytest.mark.parametrize("issue_path", ISSUES, ids=lambda p: p.stem)
def test_every_seed_paragraph_is_in_the_text_part(shipped: Workspace, issue_path: Path) -> None:
    issue = shipped.load_issue(issue_path)
    variant = shipped.renderer.variant(issue, frozenset())
    text = norm(fill(split(variant.text, "text"), None))
    seed = (SEEDS / SEED_FOR[issue.slug]).read_text(encoding="utf-8")
    units = seed_units(seed)
    assert len(units) > 30
    missing = [u for u in units if norm(u) not in text]
    assert missing == []
    # The title line of the blog seed is "title - date"; the text part's header says so too.
    first = norm(seed.split("\n", 1)[0])
    if " - " in first:
        assert first in text


@pytest.mark.parametrize("issue_path", ISSUES, ids=lambda p: p.stem)
def test_seed_headings_are_real_headings(shipped: Workspace, issue_path: Path) -> None:
    issue = shipped.load_issue(issue_path)
    html = shipped.renderer.variant(issue, frozenset()).html
    headings = [norm(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    # Nine or ten sections: "In this issue" comes first.
    expected = ["In this issue", *(s.heading for s in issue.sections)]
    if issue.numbered:
        expected = [expected[0], *(f"{i}. {h}" for i, h in enumerate(expected[1:], start=1))]
    assert headings == [norm(h) for h in expected]


def test_audiences_pick_sections(shipped: Workspace) -> None:
    issue = shipped.load_issue(REPO / "newsletters" / "2012-07-13-peter-duxbury-briefing.yaml")
    heads, managers, everyone = shipped.renderer.variants(
        issue, [frozenset({"headteachers"}), frozenset({"managers"}), frozenset()]
    )
    assert "Retiring Headteachers" in heads.html and "Retiring Headteachers" in heads.text
    assert "Retiring Headteachers" not in managers.html
    assert "Retiring Headteachers" not in managers.text
    assert "Leadership, Leadership" in managers.html
    assert "Leadership, Leadership" not in heads.html
    assert "Retiring Headteachers" in everyone.html and "Leadership, Leadership" in everyone.html
    both = shipped.renderer.variant(issue, frozenset({"headteachers", "managers"}))
    assert "Retiring Headteachers" in both.html and "Leadership, Leadership" in both.html
    assert both.key == "headteachers+managers"


def test_sections_are_renumbered_per_audience(shipped: Workspace) -> None:
    issue = shipped.load_issue(REPO / "newsletters" / "2012-07-13-peter-duxbury-briefing.yaml")
    managers = shipped.renderer.variant(issue, frozenset({"managers"}))
    # Section headings are underlined; "In this issue" lists the same numbers first.
    numbers = [int(n) for n in re.findall(r"^(\d+)\. .*\n-+$", managers.text, re.M)]
    assert numbers == list(range(1, len(numbers) + 1))
    listed = re.search(r"^In this issue\n-+\n((?:.+\n)+)", managers.text, re.M)
    assert listed is not None
    assert [int(n) for n in re.findall(r"^(\d+)\. ", listed[1], re.M)] == numbers


def test_text_part_wraps_at_76_except_urls(shipped: Workspace) -> None:
    for issue_path in ISSUES:
        issue = shipped.load_issue(issue_path)
        text = shipped.renderer.variant(issue, frozenset()).text
        for line in fill(split(text, "text"), None).splitlines():
            assert len(line) <= 76 or re.search(r"\S+://\S+", line), line


def test_placeholders_survive_every_engine(workspace: Path) -> None:
    """A placeholder in a Markdown link, a button URL and the greeting comes out
    in canonical form with both inliners, ready for stage 2."""
    issue_path = workspace / "newsletters" / "ph.yaml"
    issue_path.write_text(
        "title: Placeholders\ndate: 2025-01-01\ntemplate: blog\npreheader: p\n"
        'greeting: Dear {{ first_name | default("colleagues") }},\n'
        "sections:\n  - heading: Links\n"
        "    body: See [your page](https://example.org/p?e={{ email }}) today.\n"
        "    button: {label: Open, url: 'https://example.org/b?n={{ name }}'}\n",
        encoding="utf-8",
    )
    for inliner in ("css-inline", "premailer"):
        toml = (workspace / "newsletter.toml").read_text(encoding="utf-8")
        toml = re.sub(r'inliner = "[^"]+"', f'inliner = "{inliner}"', toml)
        (workspace / "newsletter.toml").write_text(toml, encoding="utf-8")
        ws = Workspace.open(workspace)
        assert ws.config.inliner == inliner
        variant = ws.renderer.variant(ws.load_issue(issue_path), frozenset())
        assert 'Dear {{ first_name | default("colleagues") }},' in variant.html
        assert 'href="https://example.org/p?e={{ email }}"' in variant.html
        assert 'href="https://example.org/b?n={{ name }}"' in variant.html
        assert variant.html.lower().startswith("<!doctype html>")
        # unsubscribe_token: the footer's private link, filled in per person by the send.
        assert variant.fields == {"first_name", "email", "name", "unsubscribe_token"}
        assert variant.required == {"email", "name"}
        filled = fill(split(variant.html, "html"), {"email": "a&b@example.org", "name": "<b>"})
        assert "e=a%26b%40example.org" in filled
        assert "Dear colleagues," in filled


@pytest.mark.parametrize("inliner", ["css-inline", "premailer"])
def test_both_inliners_build_the_shipped_issues(workspace: Path, inliner: str) -> None:
    toml = workspace / "newsletter.toml"
    toml.write_text(
        re.sub(r'inliner = "[^"]+"', f'inliner = "{inliner}"', toml.read_text("utf-8")), "utf-8"
    )
    ws = Workspace.open(workspace)
    for issue_path in sorted((workspace / "newsletters").glob("*.yaml")):
        issue = ws.load_issue(issue_path)
        html = ws.renderer.variant(issue, frozenset()).html
        # The inliner moved the .body rules onto the elements themselves.
        assert re.search(r'<p style="[^"]*margin: ?0(px)? 0(px)? 16px', html), inliner
        # Mobile rules keep their !important and stay in a <style> block.
        assert "@media only screen and (max-width: 480px)" in html
        assert "!important" in html
        assert '<html lang="en-GB"' in html


def test_config_without_web_url_or_unsubscribe_omits_those_links(workspace: Path) -> None:
    ws = Workspace.open(workspace)
    bare = Config(root=workspace, name="N", organisation="Org")
    from sender.render import Renderer

    issue = ws.load_issue(ISSUES[0])
    variant = Renderer(bare).variant(issue, frozenset())
    assert "View this issue" not in variant.html and "Unsubscribe" not in variant.html
    full = ws.renderer.variant(issue, frozenset())
    assert "View this issue in your browser" in full.html
    assert "https://news.riverside.example.org/" in full.html


@pytest.mark.parametrize(
    ("markdown", "levels"),
    [
        ("# Big\n\nText\n\n### Small\n\n###### Tiny", ["h3", "h4", "h5"]),
        # The biggest written is h3, whatever its marks; the next size h4.
        ("## A\n\n### B\n\n## C", ["h3", "h4", "h3"]),
        ("### Only", ["h3"]),
        # Smaller first: never more than one below the heading before (the section's h2).
        ("### Small\n\n# Big\n\n#### Smallest", ["h3", "h3", "h4"]),
    ],
)
def test_headings_inside_a_section_sit_below_the_section_heading(
    markdown: str, levels: list[str]
) -> None:
    from sender.markup import to_html

    assert re.findall(r"<(h\d)>", to_html(markdown)) == levels


@pytest.mark.parametrize(
    ("contents", "sections", "shown"),
    [(None, 5, False), (None, 6, True), ("false", 9, False), ("true", 1, True)],
)
def test_in_this_issue_from_six_sections_unless_the_issue_says(
    workspace: Path, contents: str | None, sections: int, shown: bool
) -> None:
    path = workspace / "newsletters" / "contents.yaml"
    head = "title: T\ndate: 2025-03-06\ntemplate: briefing\nnumbered: true\n"
    head += f"contents: {contents}\n" if contents else ""
    body = "".join(f"  - heading: Part {n}\n    body: Words.\n" for n in range(1, sections + 1))
    path.write_text(head + "sections:\n" + body, encoding="utf-8")
    ws = Workspace.open(workspace)
    variant = ws.renderer.variant(ws.load_issue(path), frozenset())
    assert ("In this issue" in variant.html) is shown
    assert ("In this issue\n-------------\n1. Part 1\n" in variant.text) is shown
    if shown:
        links = re.findall(r'<li[^>]*><a href="#(section-\d+)"[^>]*>Part \d+</a>', variant.html)
        assert links == [f"section-{n}" for n in range(1, sections + 1)]
        assert all(f'<h2 id="{link}"' in variant.html for link in links)


def test_the_email_ends_as_a_letter_with_the_authors_name_and_role(shipped: Workspace) -> None:
    """After the sign-off, the author's name and role, in both parts; nothing above the
    greeting; not twice when the sign-off already ends with the full name."""
    briefing = shipped.load_issue(ISSUES[0])  # no sign-off: it ends with the signature
    v = shipped.renderer.variant(briefing, frozenset())
    name = "Peter Duxbury\nStrategic Director for Children, Young People and Families\n"
    assert name in v.text and v.text.index(name) > v.text.index("has been phenomenal.")
    assert v.text.index("Peter Duxbury\n") > v.text.index("Dear ")
    html = re.sub(r"\s+", " ", v.html)
    assert "<strong>Peter Duxbury</strong><br>Strategic Director" in html
    assert html.index("<strong>Peter Duxbury</strong>") > html.index("Dear ")
    rich = shipped.load_issue(RICH)  # signed "Alex": the full name and role follow it
    text = shipped.renderer.variant(rich, frozenset()).text
    assert "Best wishes,\n\nAlex\n\nAlex Morgan\nHead of Communications\n" in text
    blog = shipped.load_issue(ISSUES[1])  # its sign-off ends "Steve Kay - Director of …"
    text = shipped.renderer.variant(blog, frozenset()).text
    assert text.count("Steve Kay - Director") == 1 and "Steve Kay\n" not in text
    assert "Steve Kay, Director" not in text
