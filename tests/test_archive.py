"""The archive after real sends: complete, linked, valid feeds, no personal data."""

from __future__ import annotations

import csv
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree as ET

import pytest
from conftest import Cli

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"
BRIEFING = "newsletters/2012-07-13-peter-duxbury-briefing.yaml"
ATOM = "{http://www.w3.org/2005/Atom}"


pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]


@pytest.fixture
def sent(cli: Cli, workspace: Path) -> Path:
    """Two eml sends of different issues to different lists, one person on two lists.

    The outbox is this workspace's way of delivering (not a rehearsal), so the
    sends are archived."""
    config = workspace / "newsletter.toml"
    config.write_text(
        config.read_text("utf-8").replace("[send]\n", "[send]\noutbox_is_delivery = true\n"),
        "utf-8",
    )
    first = cli("send", BLOG, "--list", "headteachers", "--yes")
    assert first.exit_code == 0, first.output
    second = cli("send", BRIEFING, "--list", "managers", "--list", "all-staff", "--yes")
    assert second.exit_code == 0, second.output
    return workspace / "archive"


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, _tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def test_archive_has_both_issues_and_every_version_sent(sent: Path) -> None:
    pages = sorted(p.relative_to(sent).as_posix() for p in sent.rglob("*.html"))
    assert pages == [
        "2012/2012-07-13-peter-duxbury-briefing/all-staff+managers.html",
        "2012/2012-07-13-peter-duxbury-briefing/all-staff.html",
        "2012/2012-07-13-peter-duxbury-briefing/managers.html",
        "2025/2025-02-13-steve-kay-blog/headteachers.html",
        "all-staff/index.html",
        "headteachers/index.html",
        "index.html",
        "managers/index.html",
    ]
    index = (sent / "index.html").read_text(encoding="utf-8")
    # Newest first: the 2025 blog before the 2012 briefing.
    assert index.index("Steve Kay&#39;s Blogpost") < index.index(
        "Peter Duxbury&#39;s July briefing"
    )
    assert "sent to 39 people" in index  # headteachers less one suppressed
    heads = (sent / "headteachers" / "index.html").read_text(encoding="utf-8")
    assert "Steve Kay" in heads and "Peter Duxbury" not in heads
    # Each version holds its own sections.
    managers = (sent / "2012/2012-07-13-peter-duxbury-briefing/managers.html").read_text("utf-8")
    assert "Leadership, Leadership, Leadership!" in managers
    assert "Retiring Headteachers" not in managers


def test_every_relative_link_resolves(sent: Path) -> None:
    checked = 0
    for page in sent.rglob("*.html"):
        parser = Links()
        html = page.read_text(encoding="utf-8")
        parser.feed(html)
        for link in parser.links:
            parts = urlsplit(link)
            if link.startswith("#"):  # "In this issue": each section's heading has its id
                assert f'id="{link[1:]}"' in html, f"{page}: {link}"
                checked += 1
                continue
            if parts.scheme:
                assert parts.scheme in ("https", "mailto"), f"{page}: {link}"
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(sent)} links to missing {link}"
            assert target.is_relative_to(sent.resolve())
            checked += 1
    for feed in sent.rglob("feed.xml"):
        for element in ET.parse(feed).getroot().iter(f"{ATOM}link"):
            href = element.get("href", "")
            assert (feed.parent / href).is_file(), f"{feed}: {href}"
            checked += 1
    assert checked > 20


def test_each_issue_page_links_back_to_its_lists_index_and_has_no_unsubscribe(
    sent: Path,
) -> None:
    issue = sent / "2012" / "2012-07-13-peter-duxbury-briefing"
    for key, home, label in [
        ("managers", "../../managers/index.html", "All issues for managers"),
        ("all-staff", "../../all-staff/index.html", "All issues for all-staff"),
        ("all-staff+managers", "../../index.html", "All issues"),
    ]:
        page = (issue / f"{key}.html").read_text("utf-8")
        assert f'href="{home}"' in page and f">{label}</a>" in page, key
        assert (issue / home).resolve().is_file()
        # Unsubscribing means nothing on a public page: no link, no footer line, no token.
        assert "nsubscribe" not in page and "/u/" not in page and "your-private-link" not in page
    blog = (sent / "2025/2025-02-13-steve-kay-blog/headteachers.html").read_text("utf-8")
    assert 'href="../../headteachers/index.html"' in blog and "nsubscribe" not in blog


def test_sent_to_counts_people_on_each_index(sent: Path) -> None:
    """The briefing went to managers and all-staff: everyone on managers is on all-staff
    too, so the issue reached as many people as all-staff has; each list's index says
    how many on that list."""
    ledger_people = len(list((sent.parent / "outbox").rglob("*.eml")))
    index = (sent / "index.html").read_text("utf-8")
    counts = dict(re.findall(r"<a href=\"([^\"]+)\">.*?sent to (\d+) people", index, re.S))
    briefing = "2012/2012-07-13-peter-duxbury-briefing/all-staff.html"
    blog = "2025/2025-02-13-steve-kay-blog/headteachers.html"
    assert counts == {briefing: "149", blog: "39"}
    assert int(counts[briefing]) + int(counts[blog]) == ledger_people
    managers = (sent / "managers" / "index.html").read_text("utf-8")
    assert "sent to 25 people" in managers
    staff = (sent / "all-staff" / "index.html").read_text("utf-8")
    assert "sent to 149 people" in staff


def test_feeds_are_atom_with_the_required_elements(sent: Path) -> None:
    feeds = sorted(p.relative_to(sent).as_posix() for p in sent.rglob("feed.xml"))
    assert feeds == ["all-staff/feed.xml", "feed.xml", "headteachers/feed.xml", "managers/feed.xml"]
    ids = set()
    for name in feeds:
        root = ET.parse(sent / name).getroot()
        assert root.tag == f"{ATOM}feed"
        for required in ("id", "title", "updated", "author"):
            assert root.find(f"{ATOM}{required}") is not None, (name, required)
        assert root.find(f"{ATOM}link[@rel='self']") is not None
        entries = root.findall(f"{ATOM}entry")
        assert entries, name
        for entry in entries:
            for required in ("id", "title", "updated"):
                assert (entry.findtext(f"{ATOM}{required}") or "").strip(), (name, required)
            assert entry.find(f"{ATOM}link[@rel='alternate']") is not None
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", entry.findtext(f"{ATOM}updated") or ""
            )
        ids.add(root.findtext(f"{ATOM}id"))
    assert len(ids) == len(feeds)
    main = ET.parse(sent / "feed.xml").getroot()
    assert len(main.findall(f"{ATOM}entry")) == 2


def test_no_recipient_appears_anywhere_in_the_archive(sent: Path, workspace: Path) -> None:
    needles: set[str] = set()
    for path in (workspace / "recipients").glob("*.csv"):
        with path.open(encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                needles.add(row["email"].strip().lower())
                if row.get("name"):
                    needles.add(row["name"].strip().lower())
    assert len(needles) > 200
    files = [p for p in sent.rglob("*") if p.is_file()]
    assert len(files) == 12
    for path in files:
        text = path.read_text(encoding="utf-8").lower()
        found = [n for n in needles if n in text]
        assert found == [], f"{path}: {found[:3]}"
    blog = (sent / "2025/2025-02-13-steve-kay-blog/headteachers.html").read_text("utf-8")
    assert "Dear colleagues," in blog


def test_rebuilding_changes_nothing_and_history_lists_the_sends(cli: Cli, sent: Path) -> None:
    before = {p: p.read_bytes() for p in sent.rglob("*") if p.is_file()}
    result = cli("archive")
    assert result.exit_code == 0, result.output
    assert "(0 files changed)" in result.output
    assert {p: p.read_bytes() for p in sent.rglob("*") if p.is_file()} == before
    history = cli("history")
    assert history.exit_code == 0
    assert "Steve Kay" in history.output and "Peter Duxbury" in history.output


def test_test_sends_and_dry_runs_are_not_archived(cli: Cli, workspace: Path) -> None:
    cli("send", BLOG, "--list", "headteachers", "--dry-run")
    cli("send", BLOG, "--test-to", "me@example.net")
    assert not (workspace / "archive").exists()
    assert cli("archive").exit_code == 0
    assert "Nothing has been sent yet" in (workspace / "archive" / "index.html").read_text("utf-8")
