"""Every sent issue's web copy, an index per list and overall, and Atom feeds.

The archive is a static folder, rebuilt from the ledger (what was sent, to
which lists, when) and the issue files: open it from disk or publish it at
``web_url``; every link in it is relative. Web copies carry no personal data:
placeholders show their defaults, exactly as ``newsletter build`` does.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import jinja2

from .audiences import key_lists, parse_key
from .build import write_if_changed
from .issue import Issue, slug_for
from .ledger import read_ledger
from .pictures import published
from .placeholders import fill, split
from .problems import Problem
from .render import Renderer, long_date, template_loader
from .workspace import Workspace

ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class Entry:
    """One sent issue as the archive shows it."""

    issue: Issue
    lists: tuple[str, ...]  # every list it went to
    keys: tuple[str, ...]  # every version sent: 'headteachers', 'headteachers+managers'
    sent: int  # people (one row each in the ledger, however many lists they are on)
    updated: str  # when its last send finished (ISO 8601, UTC)
    # People it was sent to on each list (someone on two lists counts on each).
    reached: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def folder(self) -> str:
        return f"{self.issue.date.year}/{self.issue.slug}"


@dataclass
class ArchiveResult:
    folder: Path
    entries: list[Entry]
    written: list[Path]
    warnings: list[Problem]


def collect(ws: Workspace) -> tuple[list[Entry], list[Problem]]:
    """What the ledger says was sent, joined with the issue files, newest first."""
    with read_ledger(ws.config) as ledger:
        # Copies saved to the outbox as a rehearsal were not sent: not archived.
        sends = [s for s in ledger.sends() if s.sent and s.scope == "delivery"]
        by_issue: dict[str, list[str]] = {}
        for s in sends:
            by_issue.setdefault(s.issue, []).append(s.finished or s.started)
        issues = _issue_files(ws)
        # An issue is known by its identity; its file may have been renamed since.
        for record in ledger.issues():
            if record.file and ws.config.resolve(Path(record.file)).is_file():
                issues[record.key] = ws.config.resolve(Path(record.file))
        entries: list[Entry] = []
        warnings: list[Problem] = []
        for slug, stamps in by_issue.items():
            delivered = [d for d in ledger.deliveries(slug) if d.state == "sent"]
            if not delivered:
                continue
            source = issues.get(slug)
            if source is None:
                warnings.append(
                    Problem(
                        ws.display(ws.config.newsletters_dir),
                        None,
                        None,
                        f"'{slug}' was sent but its issue file is gone; its archive pages "
                        "are kept as they were",
                        severity="warning",
                    )
                )
                continue
            keys = sorted({d.lists for d in delivered})
            lists = sorted({name for key in keys for name in key_lists(key)})
            reached = Counter(name for d in delivered for name in key_lists(d.lists))
            entries.append(
                Entry(
                    ws.load_issue(source),
                    tuple(lists),
                    tuple(keys),
                    len(delivered),
                    max(stamps),
                    reached,
                )
            )
    entries.sort(key=lambda e: (e.issue.date, e.updated, e.issue.slug), reverse=True)
    return entries, warnings


def rebuild(ws: Workspace) -> ArchiveResult:
    """Write the whole archive; files whose bytes would not change are left alone."""
    folder = ws.config.resolve(ws.config.archive)
    entries, warnings = collect(ws)
    # The archive's own copy: images next to the page, no "view in browser"
    # link (this is the browser copy).
    renderer = Renderer(
        dataclasses.replace(ws.config, web_url=None), pictures="archive", home=_home
    )
    written: list[Path] = []

    def put(relative: str, data: bytes) -> None:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if write_if_changed(target, data):
            written.append(target)

    for entry in entries:
        pages = sorted(set(entry.keys) | set(entry.lists))
        variants = renderer.variants(entry.issue, [parse_key(k) for k in pages])
        pictures = {}
        for key, variant in zip(pages, variants, strict=True):
            html = fill(split(variant.html, "html"), None)
            put(f"{entry.folder}/{key}.html", html.encode("utf-8"))
            pictures.update({p.src: p for p in variant.pictures})
        # The prepared copies, never the originals: resized, and without the GPS
        # position a phone writes into a photo.
        for src, picture in sorted(pictures.items()):
            put(f"{entry.folder}/{src}", picture.data)

    env = jinja2.Environment(
        loader=template_loader(ws.config.templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    page = env.get_template("_archive.html.j2")
    all_lists = sorted({name for e in entries for name in e.lists})
    context = {
        "newsletter": {
            "name": ws.config.name,
            "lang": ws.config.lang,
            "organisation": ws.config.organisation,
        }
    }
    put(
        "index.html",
        page.render(
            **context,
            heading="All issues",
            entries=[_row(e, _best_key(e), "") for e in entries],
            lists=[(name, f"{name}/index.html") for name in all_lists],
            home=None,
            feed="feed.xml",
        ).encode("utf-8"),
    )
    put("feed.xml", _feed(ws, entries, None, ""))
    for name in all_lists:
        mine = [e for e in entries if name in e.lists]
        put(
            f"{name}/index.html",
            page.render(
                **context,
                heading=f"Issues for {name}",
                entries=[_row(e, name, "../", e.reached.get(name, e.sent)) for e in mine],
                lists=[],
                home="../index.html",
                feed="feed.xml",
            ).encode("utf-8"),
        )
        put(f"{name}/feed.xml", _feed(ws, mine, name, "../"))
    return ArchiveResult(folder, entries, written, warnings)


def _home(audiences: frozenset[str]) -> tuple[str, str]:
    """A web copy's link back, from YEAR/SLUG/KEY.html: its list's index, or every issue's
    for a version of several lists."""
    if len(audiences) == 1:
        [name] = audiences
        return f"../../{name}/index.html", f"All issues for {name}"
    return "../../index.html", "All issues"


def _best_key(entry: Entry) -> str:
    """The overall index and feed link each issue to one list's page: the first by name."""
    return entry.lists[0]


def _row(entry: Entry, key: str, up: str, sent: int | None = None) -> dict[str, object]:
    """An index's line for an issue; ``sent``: the people it reached on that index's list."""
    return {
        "href": f"{up}{entry.folder}/{key}.html",
        "title": entry.issue.title,
        "date": long_date(entry.issue),
        "iso_date": entry.issue.date.isoformat(),
        "lists": entry.lists,
        "sent": entry.sent if sent is None else sent,
    }


def _feed(ws: Workspace, entries: list[Entry], list_name: str | None, up: str) -> bytes:
    """An Atom feed (RFC 4287); links relative to the feed, xml:base when published."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    base = ws.config.web_url
    if base:
        base = base if base.endswith("/") else base + "/"
        feed.set(
            "{http://www.w3.org/XML/1998/namespace}base",
            base + (f"{list_name}/" if list_name else ""),
        )
    suffix = f":{list_name}" if list_name else ""
    _text(feed, "id", f"tag:{ws.config.domain},2000:archive{suffix}")
    _text(feed, "title", ws.config.name + (f" · {list_name}" if list_name else ""))
    _text(feed, "updated", max((e.updated for e in entries), default="1970-01-01T00:00:00+00:00"))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", ws.config.organisation)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href="feed.xml")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", href="index.html", type="text/html")
    for e in entries:
        key = list_name or _best_key(e)
        item = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(item, "id", f"tag:{ws.config.domain},{e.issue.date.isoformat()}:{e.issue.slug}:{key}")
        _text(item, "title", e.issue.title)
        _text(item, "updated", e.updated)
        _text(item, "published", e.issue.date.isoformat() + "T00:00:00Z")
        ET.SubElement(
            item,
            f"{{{ATOM}}}link",
            rel="alternate",
            type="text/html",
            href=f"{up}{e.folder}/{key}.html",
        )
        summary = e.issue.preheader or e.issue.subtitle or e.issue.title
        _text(item, "summary", fill(split(summary, "text"), None))
    ET.indent(feed)
    body: bytes = ET.tostring(feed, encoding="utf-8")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body + b"\n"


def _text(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = value


def _issue_files(ws: Workspace) -> dict[str, Path]:
    return {slug_for(p): p for p in sorted(ws.config.newsletters_dir.glob("*.yaml"))}


__all__ = ["ArchiveResult", "Entry", "collect", "publish_pictures", "rebuild"]


def publish_pictures(ws: Workspace, issue: Issue) -> list[tuple[Path, str]]:
    """Write the issue's local pictures where the archive publishes them, before a send
    in ``hosted`` mode; each file written with the address the emails link it at."""
    folder = ws.config.resolve(ws.config.archive)
    renderer = Renderer(ws.config, pictures="hosted")
    variant = renderer.variant(issue, frozenset())
    out: list[tuple[Path, str]] = []
    base = (ws.config.web_url or "").rstrip("/") + "/"
    for picture in variant.pictures:
        relative = published(issue, picture.src)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_if_changed(target, picture.data)
        out.append((target, base + relative))
    return out
