"""Word (.docx) -> blocks: mammoth turns the document into semantic HTML, and that HTML
into blocks with Markdown text (headings, bold, italic, links, lists, tables, pictures).
An email's HTML (mail.py) goes through the same ``html_blocks``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote

from .markdown import _escape_inline, _md_text
from .model import Block, BriefingError, Item, Picture
from .shapes import _clean, _space
from .text import _para

_STYLE_MAP = """
p[style-name='Title'] => h1.docx-title:fresh
p[style-name='Subtitle'] => p.docx-subtitle:fresh
p[style-name='Quote'] => blockquote > p:fresh
p[style-name='Intense Quote'] => blockquote > p:fresh
"""


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str]
    children: list[_Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _Tree(HTMLParser):
    """HTML as a small tree: mammoth's (simple and well formed) or an email's (anything;
    what a reader never sees, such as <head> and <style>, is dropped)."""

    VOID = frozenset({"img", "br", "hr", "meta", "link", "input", "col", "area", "base", "wbr"})
    UNSEEN = frozenset({"head", "style", "script", "title", "template", "xml", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("root", {})
        self.stack = [self.root]
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.UNSEEN:
            self.hidden += 1
            return
        if self.hidden:
            return
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.hidden and tag not in self.UNSEEN:
            self.stack[-1].children.append(_Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.UNSEEN:
            self.hidden = max(0, self.hidden - 1)
            return
        if self.hidden:
            return
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.stack[-1].children.append(data)


def _docx_blocks(data: bytes, name: str) -> tuple[list[Block], list[Picture], list[str]]:
    import mammoth  # only Word imports need it

    pictures: list[Picture] = []

    def picture(image: object) -> dict[str, str]:
        with image.open() as f:  # type: ignore[attr-defined]
            content = f.read()
        alt = getattr(image, "alt_text", None)
        pictures.append(Picture(content, getattr(image, "content_type", "") or "", alt))
        return {"src": f"picture:{len(pictures) - 1}"}

    try:
        result = mammoth.convert_to_html(
            io.BytesIO(data),
            style_map=_STYLE_MAP,
            convert_image=mammoth.images.img_element(picture),
        )
    except Exception as exc:  # a damaged document can fail anywhere inside mammoth
        raise BriefingError(
            f"{name} could not be read as a Word document ({type(exc).__name__}: {exc}); "
            "open it in Word and save it again as .docx"
        ) from None
    warnings: list[str] = []
    styles: set[str] = set()
    for message in result.messages:
        style = re.search(r"style: (.+?) \(Style ID", message.message)
        if style:
            styles.add(style.group(1))
        elif message.message.startswith("Image of type"):
            continue  # judged by its bytes instead, and said where it is (Picture.problem)
        elif message.message not in warnings:
            warnings.append(f"{name}: {message.message}")
    if styles:
        warnings.append(
            f"{name}: Word styles read as plain paragraphs: {', '.join(sorted(styles))}; "
            "check those paragraphs"
        )
    return html_blocks(_tree(result.value), warnings), pictures, warnings


def _tree(html: str) -> _Node:
    tree = _Tree()
    tree.feed(_clean(html))
    tree.close()
    return tree.root


def html_blocks(root: _Node, warnings: list[str]) -> list[Block]:
    blocks: list[Block] = []
    for child in root.children:
        if isinstance(child, _Node):
            blocks += _html_block(child, warnings)
        elif child.strip():
            blocks.append(_para(_space(child), None))
    return blocks


# Tags that sit inside a line of text; a box holding only these is a paragraph.
_INLINE = frozenset(
    [
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "s",
        "span",
        "font",
        "br",
        "img",
        "sup",
        "sub",
        "small",
        "big",
        "code",
        "mark",
        "abbr",
        "time",
        "del",
        "ins",
        "label",
        "o:p",
        "cite",
        "q",
    ]
)


def _html_block(node: _Node, warnings: list[str]) -> list[Block]:
    tag = node.tag
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        text = _space(node.text())
        if not text:
            return []
        style = "title" if "docx-title" in node.attrs.get("class", "") else ""
        return [
            Block("heading", md=_md_text(text), plain=text, level=int(tag[1]), style=style),
            *_images_in(node),
        ]
    if tag == "p" or (tag not in _BLOCKS and _inline_only(node)):
        md, plain = _inline(node.children)
        out: list[Block] = []
        if plain.strip():
            block = _para(_space(plain), None)
            block.md = md
            block.bold = _all_bold(node)
            block.lines = [s for s in (_space(x) for x in plain.split("\n")) if s]
            block.style = "subtitle" if "docx-subtitle" in node.attrs.get("class", "") else ""
            out.append(block)
        return out + _images_in(node)
    if tag in ("ul", "ol"):
        return [_html_list(node), *_images_in(node)]
    if tag == "blockquote":
        paras = [c for c in node.children if isinstance(c, _Node)]
        quote = [_inline(p.children)[0] for p in paras if _inline(p.children)[1].strip()]
        plain = " ".join(_space(p.text()) for p in paras)
        if not quote and _space(node.text()):  # an email's <blockquote>text</blockquote>
            md, plain = _inline(node.children)
            quote = [md]
        return [Block("quote", plain=_space(plain), quote=quote)] if quote else []
    if tag == "table":
        table = _html_table(node)
        if table is None:  # a table that lays things out: its cells, block by block
            return _children(node, warnings)
        return [table, *_images_in(node)]
    if tag == "img":
        return _images_in(_Node("div", {}, [node]))
    if tag == "hr":
        return []
    # Anything else (div, section, td of a layout table): its children, block by block.
    return _children(node, warnings)


_BLOCKS = frozenset(
    ["p", "ul", "ol", "li", "blockquote", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr"]
)


def _inline_only(node: _Node) -> bool:
    return all(isinstance(c, str) or (c.tag in _INLINE and _inline_only(c)) for c in node.children)


def _children(node: _Node, warnings: list[str]) -> list[Block]:
    out: list[Block] = []
    for c in node.children:
        if isinstance(c, _Node):
            out += _html_block(c, warnings)
        elif c.strip():
            out.append(_para(_space(c), None))
    return out


def _html_table(node: _Node) -> Block | None:
    """A table of data (dates and events): each cell's Markdown on one line. None for a
    table that only lays things out: one row or one column, or cells holding pictures,
    other tables or more than a few paragraphs."""
    rows = [n for n in _walk(node) if n.tag == "tr"]
    cells = [
        [c for c in row.children if isinstance(c, _Node) and c.tag in ("td", "th")] for row in rows
    ]
    cells = [r for r in cells if r]
    if len(cells) < 2 or max(len(r) for r in cells) < 2:
        return None
    for row in cells:
        for cell in row:
            inner = _walk(cell)
            if any(n.tag in ("table", "img") for n in inner):
                return None
            if sum(1 for n in inner if n.tag in ("p", "div", "li")) > 6:
                return None
    first = cells[0]
    bold = all(_all_bold(c) for c in first)
    header = all(c.tag == "th" for c in first) or any(n.tag == "thead" for n in _walk(node))
    text = [[_cell_md(c) for c in row] for row in cells]
    if bold:  # a header row made bold by hand: a header shows bold by itself
        text[0] = [re.sub(r"^\*\*(.*)\*\*$", r"\1", c) for c in text[0]]
    table = Block("table", rows=text, header=header or bold)
    table.plain = " ".join(_space(c.text()) for row in cells for c in row)
    return table


def _cell_md(cell: _Node) -> str:
    """A cell's paragraphs and list items on one line, joined by '; ' (a table row is one
    line of Markdown)."""
    parts: list[str] = []
    loose: list[_Node | str] = []
    for c in [cell, *_walk(cell)]:
        if c is not cell and c.tag in ("p", "li"):
            parts.append(
                _inline(
                    [x for x in c.children if not (isinstance(x, _Node) and x.tag in ("ul", "ol"))]
                )[0]
            )
    if not parts:
        loose = list(cell.children)
        parts = [_inline(loose)[0]]
    text = "; ".join(p.replace("\\\n", " ").strip() for p in parts if p.strip())
    return _space(text)


def _walk(node: _Node) -> list[_Node]:
    out = []
    for c in node.children:
        if isinstance(c, _Node):
            out.append(c)
            out += _walk(c)
    return out


def _images_in(node: _Node) -> list[Block]:
    out = []
    for n in [node, *_walk(node)]:
        src = n.attrs.get("src", "") if n.tag == "img" else ""
        if src.startswith("picture:"):
            out.append(Block("image", image=int(src.split(":")[1])))
    return out


def _html_list(node: _Node) -> Block:
    block = Block("list", ordered=node.tag == "ol")
    for li in node.children:
        if not isinstance(li, _Node) or li.tag != "li":
            continue
        inline = [c for c in li.children if not (isinstance(c, _Node) and c.tag in ("ul", "ol"))]
        flat: list[_Node | str] = []
        for c in inline:  # items in table cells come wrapped in <p>
            if isinstance(c, _Node) and c.tag == "p":
                flat += [*c.children, _Node("br", {})]
            else:
                flat.append(c)
        md, plain = _inline(flat)
        sub = next((c for c in li.children if isinstance(c, _Node) and c.tag in ("ul", "ol")), None)
        item = Item(md, _html_list(sub) if sub is not None else None)
        block.items.append(item)
        block.plain += " " + _space(plain)
        block.lines.append(_space(plain))
    block.plain = block.plain.strip()
    return block


def _all_bold(node: _Node) -> bool:
    """Every word of the paragraph is in <strong>: a heading made by hand."""

    def loose(n: _Node) -> str:
        out = ""
        for c in n.children:
            if isinstance(c, str):
                out += c
            elif c.tag not in ("strong", "b"):
                out += loose(c)
        return out

    return bool(node.text().strip()) and not loose(node).strip()


def _inline(children: Sequence[_Node | str], *, in_link: bool = False) -> tuple[str, str]:
    """(Markdown, plain text) of inline HTML: bold, italic, links, line breaks."""
    md: list[str] = []
    plain: list[str] = []
    for c in children:
        if isinstance(c, str):
            text = re.sub(r"\s+", " ", c)
            md.append(_escape_inline(text) if in_link else _md_text(text))
            plain.append(text)
            continue
        tag = c.tag
        if tag == "br":
            md.append("\\\n")
            plain.append("\n")
        elif tag in ("strong", "b", "em", "i"):
            inner_md, inner_plain = _inline(c.children, in_link=in_link)
            mark = "**" if tag in ("strong", "b") else "*"
            md.append(_wrap(inner_md, mark))
            plain.append(inner_plain)
        elif tag == "a":
            inner_md, inner_plain = _inline(c.children, in_link=True)
            href = c.attrs.get("href", "")
            if href and not href.startswith("#") and inner_plain.strip():
                md.append(_link(inner_md, inner_plain, href))
            else:
                md.append(inner_md)
            plain.append(inner_plain)
        elif tag == "img":
            continue  # pictures are taken out as blocks of their own
        else:  # sup, sub, u, s, span: the words matter, not the style
            inner_md, inner_plain = _inline(c.children, in_link=in_link)
            md.append(inner_md)
            plain.append(inner_plain)
    text = "".join(md)
    text = re.sub(r"[ \t]*\\\n[ \t]*", "\\\n", text)
    text = re.sub(r" {2,}", " ", text).strip(" ")
    text = re.sub(r"^(?:\\\n)+|(?:\\\n)+$", "", text)  # no line break first or last
    return text, "".join(plain)


def _wrap(inner: str, mark: str) -> str:
    """**bold** with any spaces kept outside the marks, so Markdown sees them."""
    core = inner.strip()
    if not core:
        return inner
    lead = inner[: len(inner) - len(inner.lstrip())]
    trail = inner[len(inner.rstrip()) :]
    return f"{lead}{mark}{core}{mark}{trail}"


def _link(label_md: str, label_plain: str, href: str) -> str:
    href = href.strip()
    safe = quote(href, safe=":/?#[]@!$&'*+,;=%~-._")  # spaces, braces, brackets made safe
    safe = safe.replace("(", "%28").replace(")", "%29")
    if _space(label_plain) in (href, href.removeprefix("mailto:")) and " " not in safe:
        return f"<{safe}>"
    return f"[{label_md.strip().replace(chr(92) + chr(10), ' ')}]({safe})"
