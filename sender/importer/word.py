"""Word (.docx) -> blocks: mammoth turns the document into semantic HTML, and that HTML
into blocks with Markdown text (headings, bold, italic, links, lists, pictures).
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
    """mammoth's HTML as a small tree (it is simple and well formed)."""

    VOID = frozenset({"img", "br", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
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
    tree = _Tree()
    tree.feed(_clean(result.value))
    tree.close()
    blocks: list[Block] = []
    for child in tree.root.children:
        if isinstance(child, _Node):
            blocks += _html_block(child, warnings)
        elif child.strip():
            blocks.append(_para(_space(child), None))
    return blocks, pictures, warnings


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
    if tag == "p":
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
        return [Block("quote", plain=plain, quote=quote)] if quote else []
    if tag == "table":
        rows = [n for n in _walk(node) if n.tag == "tr"]
        items = []
        for row in rows:
            cells = [
                _inline(c.children)[0].replace("\\\n", " ")
                for c in row.children
                if isinstance(c, _Node) and c.tag in ("td", "th")
            ]
            cells = [c for c in cells if c.strip()]
            if cells:
                items.append(Item(" | ".join(cells)))
        if not items:
            return _images_in(node)
        warnings.append("a table was turned into a list, one row a line; check it reads well")
        return [Block("list", plain=_space(node.text()), items=items), *_images_in(node)]
    if tag == "img":
        return _images_in(_Node("div", {}, [node]))
    if tag == "hr":
        return []
    # Anything else (div, section): its children, block by block.
    out = []
    for c in node.children:
        if isinstance(c, _Node):
            out += _html_block(c, warnings)
        elif c.strip():
            out.append(_para(_space(c), None))
    return out


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
