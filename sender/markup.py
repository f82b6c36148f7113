"""Markdown from the issue, as HTML for the email and as text for reading.

The plain-text part is written from the Markdown itself, not scraped from the
HTML: headings set apart, bullets kept, links as ``label (url)``, paragraphs
wrapped at 76 columns with URLs never broken.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from functools import lru_cache

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
    # CommonMark with raw HTML off: text in the YAML is data, never markup.
    return MarkdownIt(
        "commonmark", {"html": False, "typographer": False, "maxNesting": MAX_NESTING}
    )


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
    for token in tokens:
        # The template owns h1 (title) and h2 (sections); a '#' written inside a
        # section becomes h3 or lower, so the heading outline stays in order.
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
        if pictures is not None and token.children:
            for child in token.children:
                if child.type == "image":
                    _picture(child, pictures)
    html: str = md.renderer.render(tokens, md.options, {})
    return html.strip()


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
