"""Every shipped issue, as each audience gets it, looked at in a real browser.

Debian's chromium (through playwright, ``executable_path``) opens the built
HTML from a ``file://`` URL at desktop, 600 px and 375 px widths and checks
what a reader depends on: the language is set, images have alt text, headings
go h1 → h2 without skipping, body text is at least 14 px with contrast of at
least 4.5:1, the preheader is hidden text at the top, the content column is
600 px on a desktop and a single column without horizontal scrolling on a
phone. Screenshots are written next to each test's files for a human to look
at. Nothing leaves the machine: every request that is not ``file://`` is
aborted (and a remote font, stylesheet or script is itself a failure).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from conftest import IN_CI, REPO

from sender.audiences import EVERYONE, audience_key
from sender.build import write_variants
from sender.issue import Issue, Section
from sender.placeholders import fill, split
from sender.render import audience_sets, shows_contents
from sender.workspace import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ISSUE_FILES = sorted((REPO / "newsletters").glob("*.yaml"))
_WS = Workspace.open(REPO)
AUDIENCES = [*_WS.lists, EVERYONE]
LANG = _WS.config.lang

DESKTOP, EMAIL, PHONE = 1024, 600, 375
MIN_FONT_PX = 14
MIN_CONTRAST = 4.5
DARK = 0.02  # the highest luminance a background may have in dark mode (#16202a is 0.015)
GUTTER = (12, 24)  # px of side margin for text on a phone

# One pass over the page, returning everything the checks below need.
AUDIT_JS = r"""
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = ({r, g, b}) => {
    const ch = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
    a: 1,
  });
  // The colour behind an element: the first ancestor-or-self with a
  // background that is not transparent (white, the canvas, if none).
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg.a > 0) return bg.a < 1 ? over(bg, {r: 255, g: 255, b: 255, a: 1}) : bg;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const hex = ({r, g, b}) =>
    '#' + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
  const label = (el) => el.tagName.toLowerCase()
    + (el.className ? '.' + String(el.className).trim().split(/\s+/).join('.') : '');

  const body = document.body;
  // The preheader: the first element of <body>, or of the email's article inside it.
  let pre = body.firstElementChild;
  if (pre && pre.getAttribute('role') === 'article') pre = pre.firstElementChild;
  const preStyle = pre ? getComputedStyle(pre) : null;
  const preRect = pre ? pre.getBoundingClientRect() : null;
  const preheader = pre ? {
    tag: pre.tagName.toLowerCase(),
    text: pre.textContent.replace(/\s+/g, ' ').trim(),
    hidden: preStyle.display === 'none' || preStyle.visibility === 'hidden'
      || Number(preStyle.opacity) === 0 || preRect.width * preRect.height === 0,
  } : null;

  const texts = [];
  for (const el of body.querySelectorAll('*')) {
    if (pre && pre.contains(el)) continue;
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TITLE'].includes(el.tagName)) continue;
    const own = [...el.childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent).join('').replace(/\s+/g, ' ').trim();
    if (!own || el.getClientRects().length === 0) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden' || Number(cs.opacity) === 0) continue;
    const box = el.getBoundingClientRect();
    const bg = background(el);
    let fg = parse(cs.color);
    if (fg.a < 1) fg = over(fg, bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    texts.push({
      el: label(el),
      text: own.slice(0, 50),
      fontPx: parseFloat(cs.fontSize),
      contrast: Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100,
      color: hex(fg),
      background: hex(bg),
      left: Math.round(box.left),
      right: Math.round(box.right),
    });
  }

  const visible = (el) => el.getClientRects().length > 0;
  const article = body.querySelector('[role="article"]') || body;
  const sections = [...article.children].filter(visible)
    .map((el) => el.getBoundingClientRect().width);
  const columnClass = '[class*="mj-column"]';  // the innermost: a group holds columns too
  const leaf = (el) => visible(el) && !el.querySelector(columnClass);
  const columns = [...body.querySelectorAll(columnClass)].filter(leaf).map((el) => {
    const r = el.getBoundingClientRect();
    const [top, bottom, left, width] = [r.top, r.bottom, r.left, r.width].map(Math.round);
    return {top, bottom, left, width};
  });
  const images = [...body.querySelectorAll('img')].map((img) => ({
    src: img.getAttribute('src'),
    alt: img.getAttribute('alt'),
    width: img.getBoundingClientRect().width,
    right: img.getBoundingClientRect().right,
    naturalWidth: img.naturalWidth,
  }));
  const links = [...body.querySelectorAll('a[href]')].filter(visible).map((a) => ({
    href: a.getAttribute('href'),
    text: a.textContent.replace(/\s+/g, ' ').trim(),
  }));
  return {
    lang: document.documentElement.getAttribute('lang'),
    title: document.title,
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    headings: [...body.querySelectorAll('h1, h2, h3, h4, h5, h6')].filter(visible).map((h) => ({
      level: Number(h.tagName[1]),
      text: h.textContent.replace(/\s+/g, ' ').trim(),
    })),
    preheader, texts, sections, columns, images, links,
    // The backgrounds a reader sees around and behind the text, in dark mode all dark.
    grounds: [body, body.querySelector('[role="article"]'),
      ...body.querySelectorAll('.ground, .ground td, .paper, .paper td')]
      .filter(Boolean).map((el) => ({el: label(el), background: hex(background(el)),
        luminance: lum(background(el))})),
  };
}
"""


@dataclass
class Page:
    """What one page load showed: the audit, and what it tried to fetch."""

    audit: dict[str, Any]
    screenshot: Path | None
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (resource type, url)


def look(
    context: Any,
    html_path: Path,
    widths: dict[int, bool],
    shots: Path,
    color_scheme: str = "light",
    serve: dict[str, bytes] | None = None,
) -> dict[int, Page]:
    """Open ``html_path`` in a fresh page and, at each width in turn (the window
    resized, as a reader would), audit it and, where ``widths`` says so, take a
    full-length screenshot into ``shots``."""
    blocked: list[tuple[str, str]] = []
    serve = serve or {}
    pages: dict[int, Page] = {}
    page = context.new_page()
    try:
        page.emulate_media(color_scheme=color_scheme)

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith("file://"):
                r.continue_()
            elif url in serve:  # answered from memory, never from the network
                r.fulfill(status=200, content_type="image/png", body=serve[url])
            else:
                blocked.append((r.request.resource_type, url))
                r.abort()

        page.route("**/*", route)
        for n, (width, screenshot) in enumerate(widths.items()):
            page.set_viewport_size({"width": width, "height": 800})
            if n == 0:
                page.goto(html_path.as_uri(), wait_until="load")
            audit = page.evaluate(AUDIT_JS)
            shot = None
            if screenshot:
                shot = shots / f"{html_path.stem}.{width}.{color_scheme}.png"
                page.screenshot(path=str(shot), full_page=True)
            pages[width] = Page(audit, shot, blocked)
    finally:
        page.close()
    return pages


def problems(page: Page, width: int) -> list[str]:
    """Every accessibility or layout problem on one page, as readable lines."""
    a = page.audit
    out: list[str] = []
    where = f"@{width}px"
    if a["lang"] != LANG:
        out.append(f"{where}: <html lang={a['lang']!r}>, expected {LANG!r} from newsletter.toml")
    for img in a["images"]:
        if not (img["alt"] or "").strip():
            out.append(f"{where}: <img src={img['src']!r}> has no alt text")
    # Headings: one h1 (the title) first, then no level skipped on the way down.
    levels = [h["level"] for h in a["headings"]]
    if not levels or levels[0] != 1 or levels.count(1) != 1:
        out.append(f"{where}: headings must start with a single h1, got {levels}")
    for prev, h in zip(a["headings"], a["headings"][1:], strict=False):
        if h["level"] > prev["level"] + 1:
            out.append(
                f"{where}: h{h['level']} {h['text']!r} follows h{prev['level']} (level skipped)"
            )
    for t in a["texts"]:
        if t["fontPx"] < MIN_FONT_PX:
            out.append(f"{where}: {t['el']} {t['text']!r} is {t['fontPx']}px (< {MIN_FONT_PX}px)")
        if t["contrast"] < MIN_CONTRAST:
            out.append(
                f"{where}: {t['el']} {t['text']!r} {t['color']} on {t['background']} "
                f"has contrast {t['contrast']}:1 (< {MIN_CONTRAST}:1)"
            )
    pre = a["preheader"]
    if pre is None or not pre["hidden"]:
        shown = pre and {**pre, "text": pre["text"][:60]}
        out.append(f"{where}: the first element of <body> is not hidden preheader text: {shown}")
    if a["scrollWidth"] > a["clientWidth"]:
        out.append(
            f"{where}: scrolls sideways (content {a['scrollWidth']}px > view {a['clientWidth']}px)"
        )
    # On a phone the text uses the width: side margins of 12-24 px, not desktop gutters.
    if width <= PHONE and a["texts"]:
        left = min(t["left"] for t in a["texts"])
        right = a["clientWidth"] - max(t["right"] for t in a["texts"])
        if not (GUTTER[0] <= left <= GUTTER[1] and GUTTER[0] <= right <= GUTTER[1]):
            out.append(f"{where}: text margins are {left}px and {right}px, expected {GUTTER} px")
    # On a phone, a single column: no two columns side by side (sharing a
    # stretch of height). Wider, a template may lay columns out as it likes.
    cols = a["columns"] if width <= PHONE else []
    for i, c in enumerate(cols):
        for d in cols[i + 1 :]:
            if c["top"] < d["bottom"] and d["top"] < c["bottom"] and c["left"] != d["left"]:
                out.append(f"{where}: columns side by side: {c} and {d}")
    shot = page.screenshot
    if shot is not None and (not shot.exists() or shot.stat().st_size == 0):
        out.append(f"{where}: no screenshot written to {shot}")
    return out


def remote_problems(pages: dict[int, Page]) -> list[str]:
    """Images may come from the archive's web address; fonts, CSS or scripts
    fetched from elsewhere are a privacy leak and break offline reading."""
    blocked = {b for page in pages.values() for b in page.blocked}
    return [f"the email loads a remote {kind}: {url}" for kind, url in blocked if kind != "image"]


def desktop_problems(page: Page) -> list[str]:
    widths = page.audit["sections"]
    if not widths or any(round(w) != 600 for w in widths):
        return [f"@{DESKTOP}px: the content column should be 600px wide, got {widths}"]
    return []


def sections_for(issue: Issue, audience: str) -> list[Section]:
    return [
        s
        for s in issue.sections
        if audience == EVERYONE or not s.audiences or audience in s.audiences
    ]


def normal(text: str) -> str:
    """Text as read: white space folded; the preheader's invisible filler (U+034F, ZWNJ)
    left out."""
    return " ".join(text.replace("\u00a0", " ").replace("\u034f", "").replace("\u200c", "").split())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every variant of every shipped issue, written once with placeholder defaults."""
    ws = Workspace.open(REPO)
    out = tmp_path_factory.mktemp("built")
    paths = {}
    for f in ISSUE_FILES:
        issue = ws.load_issue(f)
        variants = ws.renderer.variants(issue, audience_sets([], ws.lists))
        for b in write_variants(issue, variants, out):
            paths[(f.name, b.variant.key)] = b.html_path
    return paths


@pytest.fixture(scope="module")
def context(browser: Any) -> Iterator[Any]:
    """One browser context for this file; each check still gets a page of its own."""
    ctx = browser.new_context()
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def issues() -> dict[str, Issue]:
    ws = Workspace.open(REPO)
    return {f.name: ws.load_issue(f) for f in ISSUE_FILES}


@pytest.mark.parametrize("audience", AUDIENCES)
@pytest.mark.parametrize("issue_file", [f.name for f in ISSUE_FILES])
def test_variant_in_browser(
    context: Any,
    built: dict[tuple[str, str], Path],
    issues: dict[str, Issue],
    issue_file: str,
    audience: str,
    tmp_path: Path,
) -> None:
    issue = issues[issue_file]
    html_path = built[
        (issue_file, audience_key(frozenset() if audience == EVERYONE else frozenset({audience})))
    ]
    pages = look(context, html_path, {DESKTOP: False, EMAIL: True, PHONE: True}, tmp_path)
    found = [line for width, page in pages.items() for line in problems(page, width)]
    found += desktop_problems(pages[DESKTOP]) + remote_problems(pages)

    audit = pages[EMAIL].audit
    # The right content: the title is the h1, each section meant for this
    # audience an h2 in order (numbered in a numbered issue), the greeting
    # shows its default, the preheader is the issue's.
    headings = [(h["level"], normal(h["text"])) for h in audit["headings"]]
    shown = sections_for(issue, audience)
    contents = [(2, "In this issue")] if shows_contents(issue, len(shown)) else []
    expected = [(1, normal(issue.title)), *contents] + [
        (2, normal((f"{n}. " if issue.numbered else "") + s.heading))
        for n, s in enumerate(shown, start=1)
    ]
    if headings != expected:
        found.append(f"headings {headings} != expected {expected}")
    greeting = normal(fill(split(issue.greeting or "", "text"), None))
    if greeting and not any(normal(t["text"]).startswith(greeting) for t in audit["texts"]):
        found.append(f"greeting {greeting!r} not shown")
    if normal(audit["preheader"]["text"]) != normal(issue.preheader or ""):
        found.append(f"preheader {audit['preheader']['text']!r} != {issue.preheader!r}")
    assert "{{" not in html_path.read_text(encoding="utf-8"), "placeholders left unfilled"
    assert not found, f"{html_path.name}:\n" + "\n".join(found)
    for width in (EMAIL, PHONE):
        shot = pages[width].screenshot
        assert shot is not None and shot.stat().st_size > 0, shot


@pytest.mark.parametrize("issue_file", [f.name for f in ISSUE_FILES])
def test_dark_mode_keeps_contrast(
    context: Any, built: dict[tuple[str, str], Path], issue_file: str, tmp_path: Path
) -> None:
    """Mail apps in dark mode apply the template's prefers-color-scheme rules: the whole
    email is dark, the page around the card and the footer too, and every text keeps
    its contrast."""
    html_path = built[(issue_file, EVERYONE)]
    # At phone width both the mobile and the dark rules apply.
    pages = look(context, html_path, {EMAIL: True, PHONE: True}, tmp_path, color_scheme="dark")
    found = [line for width, page in pages.items() for line in problems(page, width)]
    for width, page in pages.items():
        grounds = page.audit["grounds"]
        assert len(grounds) > 10, grounds
        found += [
            f"@{width}px: {g['el']} is light ({g['background']})"
            for g in grounds
            if g["luminance"] > DARK
        ]
    assert not found, f"{html_path.name} (dark):\n" + "\n".join(found)
    # In light mode the same grounds are light: the dark ones come from the dark rules.
    [light] = look(context, html_path, {EMAIL: False}, tmp_path).values()
    assert all(g["luminance"] > 0.8 for g in light.audit["grounds"]), light.audit["grounds"]


def png(width: int, height: int) -> bytes:
    """A plain RGB PNG, made here so the test fetches nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes((40, 110, 160)) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def image_issue(workspace: Path) -> tuple[Workspace, Path]:
    """The blog issue in a workspace copy, with an image and a button in section 2."""
    source = workspace / "newsletters" / "2025-02-13-steve-kay-blog.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["sections"].insert(
        1,
        {
            "heading": "Careers fair",
            "body": "Pupils from twelve schools met employers at the fair.",
            "image": {"src": "https://example.org/pic.png", "alt": "Pupils at the careers fair"},
            "button": {"label": "Book a place", "url": "https://example.org/book"},
        },
    )
    path = workspace / "newsletters" / "2025-03-01-careers-fair.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return Workspace.open(workspace), path


def test_image_and_button_section(
    context: Any, image_issue: tuple[Workspace, Path], tmp_path: Path
) -> None:
    ws, path = image_issue
    issue = ws.load_issue(path)
    [b] = write_variants(issue, ws.renderer.variants(issue, [frozenset()]), tmp_path / "out")
    wide = png(1200, 600)  # wider than any column: it must scale down, not overflow
    serve = {"https://example.org/pic.png": wide}
    pages = look(context, b.html_path, {DESKTOP: False, PHONE: True}, tmp_path, serve=serve)
    found = [line for width, page in pages.items() for line in problems(page, width)]
    found += desktop_problems(pages[DESKTOP]) + remote_problems(pages)
    assert not found, "\n".join(found)

    for width, page in pages.items():
        a = page.audit
        [img] = a["images"]
        assert img["alt"] == "Pupils at the careers fair"
        assert img["src"] == "https://example.org/pic.png"
        assert img["naturalWidth"] == 1200, "the image did not load from the in-memory route"
        # Fluid: never wider than the view, never past its right edge.
        assert 0 < img["width"] <= a["clientWidth"], (width, img)
        assert img["right"] <= a["clientWidth"], (width, img)
        assert {"href": "https://example.org/book", "text": "Book a place"} in a["links"]
        assert [h["text"] for h in a["headings"]][:4] == [
            issue.title,
            "In this issue",
            "Out and About",
            "Careers fair",
        ]
    # On a phone the picture fills the column between the gutters.
    phone = pages[PHONE].audit
    assert phone["images"][0]["width"] >= PHONE - 2 * GUTTER[1], phone["images"]
    assert not pages[PHONE].blocked, pages[PHONE].blocked


# -- headings written in sections, contents, a button, axe-core ----------------------------

RICH = REPO / "tests" / "data" / "rich" / "2025-03-06-spring-update.yaml"
# An email is shown inside the mail program's own page, whose landmarks (main) hold it:
# axe's rules that a page have a main landmark and all its text in landmarks are not for it.
NOT_FOR_AN_EMAIL = {"landmark-one-main": {"enabled": False}, "region": {"enabled": False}}


@pytest.fixture(scope="module")
def axe_core() -> str:
    """axe-core's script, as the axe-playwright-python package (the test extra) ships it."""
    from importlib import resources

    try:
        return (resources.files("axe_playwright_python") / "axe.min.js").read_text("utf-8")
    except ModuleNotFoundError:
        return need_module("axe-playwright-python")


def need_module(name: str) -> NoReturn:
    message = f"{name} is not installed; run: .venv/bin/pip install -e '.[test]'"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def answer(route: Any, serve: dict[str, bytes]) -> None:
    """Pictures from memory, the page from disk, nothing from the network."""
    url = route.request.url
    if url in serve:
        route.fulfill(status=200, content_type="image/png", body=serve[url])
    elif url.startswith("file://"):
        route.continue_()
    else:
        route.abort()


def axe(page: Any, source: str) -> tuple[list[str], set[str]]:
    """axe-core's violations on the page (rule, impact, first element) and the rules passed."""
    page.evaluate(source)
    found = page.evaluate("(rules) => axe.run(document, {rules})", NOT_FOR_AN_EMAIL)
    violations = [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['html'][:120]}" for v in found["violations"]
    ]
    return violations, {p["id"] for p in found["passes"]}


def test_headings_contents_and_button_of_an_issue_with_headings_in_its_sections(
    context: Any, workspace: Path, tmp_path: Path, axe_core: str
) -> None:
    """'##' and '####' written in a section are h3 and h4 under its h2, nothing skipped
    (axe's heading-order passes); "In this issue" links to each section; the whole
    button is the link, not only its words; light and dark, 600 and 375 px."""
    path = workspace / "newsletters" / RICH.name
    path.write_bytes(RICH.read_bytes())
    ws = Workspace.open(workspace)
    issue = ws.load_issue(path)
    [b] = write_variants(
        issue, ws.renderer.variants(issue, [frozenset({"headteachers"})]), tmp_path
    )
    serve = {"https://example.org/fair.png": png(800, 400)}
    shots = tmp_path / "screenshots"
    shots.mkdir()
    found: list[str] = []
    for scheme in ("light", "dark"):
        pages = look(context, b.html_path, {EMAIL: True, PHONE: True}, shots, scheme, serve)
        found += [f"{scheme} {line}" for w, page in pages.items() for line in problems(page, w)]
    assert not found, "\n".join(found)
    headings = [(h["level"], h["text"]) for h in pages[EMAIL].audit["headings"]]
    assert headings[:7] == [
        (1, "Spring update"),
        (2, "In this issue"),
        (2, "Training days"),
        (3, "Where"),
        (4, "Parking"),
        (3, "When"),
        (2, "The careers fair"),
    ]

    for scheme in ("light", "dark"):
        page = context.new_page()
        try:
            page.emulate_media(color_scheme=scheme)
            page.set_viewport_size({"width": EMAIL, "height": 800})
            page.route("**/*", lambda route: answer(route, serve))
            page.goto(b.html_path.as_uri(), wait_until="load")
            violations, passed = axe(page, axe_core)
            assert violations == [], (scheme, violations)
            assert {"heading-order", "color-contrast", "image-alt"} <= passed, passed

            # "In this issue" takes the reader to the section.
            page.get_by_role("link", name="Term dates").click()
            page.wait_for_function("location.hash === '#section-3'")
            top = page.evaluate("document.getElementById('section-3').getBoundingClientRect().top")
            assert 0 <= top < 40, top
            assert page.get_by_role("heading", level=2, name="Term dates").is_visible()

            # The button: 44 px or more tall, and a link right to its corners.
            button = page.get_by_role("link", name="Book a place for next year")
            button.scroll_into_view_if_needed()
            box = button.bounding_box()
            assert box is not None and box["height"] >= 44 and box["width"] >= 200, box
            corners = [
                (box["x"] + 2, box["y"] + 2),
                (box["x"] + box["width"] - 2, box["y"] + box["height"] - 2),
            ]
            for x, y in corners:
                href = page.evaluate(
                    "([x, y]) => document.elementFromPoint(x, y).closest('a')?.href", [x, y]
                )
                assert href == "https://example.org/book", (scheme, x, y, href)
            page.screenshot(
                path=str(shots / f"button.{scheme}.png"),
                clip={"x": 0, "y": box["y"] - 40, "width": EMAIL, "height": box["height"] + 80},
            )
            with page.expect_request("https://example.org/book"):
                page.mouse.click(*corners[0])
        finally:
            page.close()
    assert len(list(shots.glob("*.png"))) == 6
