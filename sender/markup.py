"""Markdown from the issue, as HTML for the email and as text for reading.

The plain-text part is written from the Markdown itself, not scraped from the
HTML: headings set apart, bullets kept, links as ``label (url)``, paragraphs
wrapped at 76 columns with URLs never broken, tables as aligned columns.

Tables are GitHub-style (``| Date | Event |`` over ``|---|---|``). In the email
each is a data table whose header cells say ``scope="col"``, styled inline (no
template change), inside a box that scrolls sideways within the column when a
phone is too narrow for it, so the page itself never does.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

WIDTH = 76
# markdown-it stops reading blocks (quotes, lists) nested this deep, and the rest of the
# text is lost; the plain-text part recurses once a level, so 500 '*' were a RecursionError.
# Text nested this deep is refused when the issue is read (sender/issue.py).
MAX_NESTING = 20


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # CommonMark with raw HTML off: text in the YAML is data, never markup; and tables.
    md = MarkdownIt(
        "commonmark", {"html": False, "typographer": False, "maxNesting": MAX_NESTING}
    ).enable("table")
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    return md


# Inline styles, so that a table looks the same wherever the CSS is dropped; colours
# and size come from the text around it (dark mode included), 15 px like the author line.
TABLE_STYLE = "border-collapse:collapse;width:100%;font-size:15px;line-height:1.45;"
# Words whole (MJML breaks them anywhere in its columns): too wide, the box scrolls.
CELL_STYLE = (
    "padding:6px 10px 6px 0;text-align:left;vertical-align:top;"
    "word-break:normal;overflow-wrap:normal;"
)
HEAD_STYLE = CELL_STYLE + "border-bottom:2px solid #52606d;font-weight:bold;"
BODY_STYLE = CELL_STYLE + "border-bottom:1px solid #cbd2d9;"
# Wider than a phone: it scrolls inside this box, the page does not.
SCROLL_STYLE = "overflow-x:auto;width:0;min-width:100%;margin:0 0 16px 0;"


def _table_open(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    return f'<div style="{SCROLL_STYLE}">' + str(self.renderToken(tokens, idx, options, env))


def _table_close(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    return str(self.renderToken(tokens, idx, options, env)) + "</div>\n"


def _style_table(tokens: list[Token]) -> None:
    """Header cells with scope="col", every cell styled; an alignment the Markdown
    asked for (``|--:|``) comes after the default, so it wins."""
    in_head = False
    for token in tokens:
        if token.type == "table_open":
            token.attrSet("style", TABLE_STYLE)
        elif token.type in ("thead_open", "thead_close"):
            in_head = token.type == "thead_open"
        elif token.type in ("th_open", "td_open"):
            asked = str(token.attrs.get("style", ""))
            base = HEAD_STYLE if in_head else BODY_STYLE
            token.attrSet("style", base + asked + (";" if asked else ""))
            if token.type == "th_open":
                token.attrSet("scope", "col")


def nesting(source: str) -> tuple[int, int, bool]:
    """How deep the Markdown nests at its deepest (quotes, lists, paragraphs, bold, italic,
    links inside each other), the line where that is (from 0), and whether its blocks
    reached markdown-it's limit, so that they may be deeper still and text was lost."""
    levels = line = depth = blocks = 0
    for token in _md().parse(source):
        depth += token.nesting
        blocks = max(blocks, depth)
        inner = most = 0
        for child in token.children or ():
            inner += child.nesting
            most = max(most, inner)
        if depth + most > levels:
            levels = depth + most
            line = token.map[0] if token.map else line
    return levels, line, blocks >= MAX_NESTING


# Where a picture written in Markdown is shown from, and at what size; None leaves it.
PictureLookup = Callable[[str], "tuple[str, int, int] | None"]


def to_html(source: str, pictures: PictureLookup | None = None) -> str:
    md = _md()
    tokens = md.parse(source)
    tables = False
    levels = iter(shown_levels([int(t.tag[1]) for t in tokens if t.type == "heading_open"]))
    level = 0
    for token in tokens:
        # The template owns h1 (title) and h2 (sections): headings written in a text
        # are h3, h4, … by their place in it (see shown_levels).
        if token.type == "heading_open":
            level = next(levels)
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{level}"
        if token.type == "table_open":
            tables = True
        if pictures is not None and token.children:
            for child in token.children:
                if child.type == "image":
                    _picture(child, pictures)
    if tables:
        _style_table(tokens)
    html: str = md.renderer.render(tokens, md.options, {})
    return html.strip()


def shown_levels(written: list[int]) -> list[int]:
    """The levels (h3-h6) of headings written in a text with these levels (1 for '#'):
    relative, so the biggest written becomes h3 and the next h4, whatever the number of
    '#' marks; and never more than one below the heading before (an h2, the section's,
    for the first), so the outline skips no level."""
    ranks = {level: rank for rank, level in enumerate(sorted(set(written)), start=3)}
    out: list[int] = []
    for level in written:
        out.append(min(ranks[level], (out[-1] if out else 2) + 1, 6))
    return out


def headings(source: str) -> list[tuple[int, int, str]]:
    """Each heading of a Markdown text: its level (1 for '#'), the line it is on (from 0),
    and its words."""
    tokens = _md().parse(source)
    return [
        (int(t.tag[1]), t.map[0] if t.map else 0, tokens[i + 1].content)
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]


def _picture(token: Token, pictures: PictureLookup) -> None:
    found = pictures(str(token.attrs.get("src", "")))
    if found is None:
        return
    src, width, height = found
    token.attrSet("src", src)
    # Real width and height: no layout jump while it loads; never wider than the column.
    token.attrSet("width", str(width))
    token.attrSet("height", str(height))
    token.attrSet("style", "display:block;max-width:100%;height:auto;border:0;")


def to_inline_html(source: str) -> str:
    """One line of Markdown without the surrounding <p>."""
    html: str = _md().renderInline(source)
    return html


def to_text(source: str, width: int = WIDTH) -> str:
    tree = SyntaxTreeNode(_md().parse(source))
    return "\n\n".join(_blocks(tree.children, width)).rstrip()


def wrap(text: str, width: int = WIDTH, first: str = "", rest: str = "") -> str:
    """Wrap each hard line; long words (URLs) are never broken."""
    out = []
    for i, line in enumerate(text.split("\n")):
        out.append(
            textwrap.fill(
                line,
                width=width,
                initial_indent=first if i == 0 else rest,
                subsequent_indent=rest,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or (first if i == 0 else rest).rstrip()
        )
    return "\n".join(out)


def _blocks(nodes: list[SyntaxTreeNode], width: int) -> list[str]:
    out: list[str] = []
    for node in nodes:
        text = _block(node, width)
        if text:
            out.append(text)
    return out


def _block(node: SyntaxTreeNode, width: int) -> str:
    kind = node.type
    if kind == "paragraph":
        return wrap(_inline(node.children[0]), width)
    if kind == "heading":
        title = _inline(node.children[0])
        return f"{title}\n{'-' * min(len(title), width)}"
    if kind in ("bullet_list", "ordered_list"):
        start = int(node.attrs.get("start", 1)) if kind == "ordered_list" else 1
        items = []
        for i, item in enumerate(node.children):
            marker = "- " if kind == "bullet_list" else f"{start + i}. "
            pad = " " * len(marker)
            inner = _blocks(item.children, width - len(marker))
            body = ("\n" if node.meta.get("tight", True) else "\n\n").join(inner)
            lines = body.split("\n") if body else [""]
            items.append(
                "\n".join([marker + lines[0], *[pad + ln if ln else "" for ln in lines[1:]]])
            )
        return "\n".join(items)
    if kind == "blockquote":
        quoted = "\n\n".join(_blocks(node.children, width - 2))
        return "\n".join(("> " + ln).rstrip() for ln in quoted.split("\n"))
    if kind in ("code_block", "fence"):
        return node.content.rstrip("\n")
    if kind == "hr":
        return "-" * 20
    if kind == "table":
        return _table(node, width)
    return "\n\n".join(_blocks(node.children, width))


def _inline(node: SyntaxTreeNode) -> str:
    parts: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "text" or kind == "code_inline":
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "link":
            label = _inline(child)
            href = str(child.attrs.get("href", ""))
            shown = href.removeprefix("mailto:")
            parts.append(label if label in (href, shown) else f"{label} ({shown})")
        elif kind == "image":
            alt = _inline(child) or str(child.attrs.get("alt", ""))
            parts.append(f"[Picture: {alt}]" if alt else "[Picture]")
        else:  # em, strong, s: the words matter, not the style
            parts.append(_inline(child))
    return "".join(parts)


def _table(node: SyntaxTreeNode, width: int) -> str:
    """A table as aligned columns under a dashed rule; when the columns cannot fit in
    ``width``, each row as 'Header: value' lines instead, a blank line between rows."""
    rows: list[list[tuple[str, str]]] = []  # (text, alignment) per cell
    for part in node.children:  # thead, tbody
        for tr in part.children:
            cells = []
            for cell in tr.children:
                text = _inline(cell.children[0]) if cell.children else ""
                style = str(cell.attrs.get("style", ""))
                align = style.removeprefix("text-align:") if style else "left"
                cells.append((" ".join(text.split()), align))
            rows.append(cells)
    if not rows:
        return ""
    head, body = rows[0], rows[1:]
    columns = len(head)
    sizes = [max(len(r[c][0]) if c < len(r) else 0 for r in rows) for c in range(columns)]
    gap = "  "
    if sum(sizes) + len(gap) * (columns - 1) <= width:

        def line(cells: list[tuple[str, str]]) -> str:
            out = []
            for c in range(columns):
                text, align = cells[c] if c < len(cells) else ("", "left")
                if align == "right":
                    out.append(text.rjust(sizes[c]))
                elif align == "center":
                    out.append(text.center(sizes[c]))
                else:
                    out.append(text.ljust(sizes[c]))
            return gap.join(out).rstrip()

        rule = gap.join("-" * s for s in sizes)
        return "\n".join([line(head), rule, *(line(r) for r in body)])
    stacked = []
    for r in body:
        lines = []
        for c in range(columns):
            label = head[c][0]
            text = r[c][0] if c < len(r) else ""
            if text:
                lines.append(wrap(f"{label}: {text}" if label else text, width, "", "  "))
        stacked.append("\n".join(lines))
    return "\n\n".join(stacked)
