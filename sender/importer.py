""".txt / .docx briefing -> draft YAML issue.

A comms officer gets a briefing as a Word document or as pasted text. This
module reads it into a ``Draft`` (title, date, author, greeting, intro,
sections, sign-off, pictures) and writes that as a readable YAML issue, with a
``# CHECK:`` comment beside everything it was unsure about.

Both readers produce the same list of blocks (paragraphs, headings, lists,
quotes, pictures); one structuring pass then finds the parts of an issue, so a
Word document and the same text pasted into a .txt file give the same draft.
Word documents go through mammoth (.docx -> semantic HTML), and that HTML is
turned into Markdown here: headings, bold, italic, links, lists and pictures.

The YAML is written as text, not dumped, so it reads like the hand-written
issues in newsletters/: block scalars for Markdown, quotes only where needed.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import re
import textwrap
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal
from urllib.parse import quote

TODO_ALT = "TODO: describe this picture"
MAX_BYTES = 50 * 1024 * 1024  # a briefing is far smaller; this is the wrong file
TEMPLATE_NUMBERED = "briefing"
TEMPLATE_PLAIN = "blog"


class BriefingError(Exception):
    """The briefing cannot be imported. The message names the file and says why."""


# -- what a briefing is read into ------------------------------------------------


@dataclass
class Item:
    """One list item: Markdown text and any list nested under it."""

    md: str
    sub: Block | None = None


@dataclass
class Block:
    kind: Literal["para", "heading", "list", "quote", "image"]
    md: str = ""  # Markdown (inline) for paragraphs
    plain: str = ""  # the words, for recognising things
    level: int = 0  # heading level (Word headings)
    ordered: bool = False  # lists
    items: list[Item] = field(default_factory=list)
    quote: list[str] = field(default_factory=list)  # Markdown paragraphs of a quote
    image: int = -1  # index into Draft.images
    number: int | None = None  # a paragraph written "3. Text"
    bold: bool = False  # every word bold (Word): a heading written by hand
    names: bool = False  # a list found by its short lines, not written with bullets
    style: str = ""  # "title" or "subtitle" (Word styles)
    lines: list[str] = field(default_factory=list)  # short lines of a text block, as written
    line: int | None = None  # where it starts in a text file


@dataclass
class Picture:
    data: bytes
    content_type: str
    alt: str | None = None  # the alt text the Word document gives, if any

    @property
    def extension(self) -> str:
        sub = self.content_type.split("/")[-1].lower()
        return {"jpeg": "jpg", "svg+xml": "svg", "x-emf": "emf", "x-wmf": "wmf"}.get(sub, sub)


@dataclass
class DraftSection:
    heading: str
    body: str = ""
    image: int | None = None  # index into Draft.images
    notes: list[str] = field(default_factory=list)  # CHECK comments for this section
    image_note: str | None = None  # CHECK comment for its picture


@dataclass
class Draft:
    """What was recognised in a briefing, ready to be written as YAML."""

    source: str  # the briefing's name, as the user typed it
    title: str
    date: dt.date
    sections: list[DraftSection]
    numbered: bool = False
    subtitle: str | None = None
    author_name: str | None = None
    author_role: str | None = None
    greeting: str | None = None
    intro: str | None = None
    sign_off: str | None = None
    preheader: str | None = None
    images: list[Picture] = field(default_factory=list)
    # CHECK comments by key ("title", "date", "author", "greeting", "intro",
    # "sign_off", "preheader", "" for the file as a whole).
    notes: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # about reading the file itself
    recognised: dict[str, str] = field(default_factory=dict)  # what -> how it was read

    @property
    def template(self) -> str:
        return TEMPLATE_NUMBERED if self.numbered else TEMPLATE_PLAIN

    def note(self, key: str, message: str) -> None:
        self.notes.setdefault(key, []).append(message)

    def summary(self) -> list[tuple[str, str]]:
        """What was recognised, in the order of the issue."""
        order = ("title", "date", "author", "subtitle", "greeting", "intro", "sections", "sign-off")
        return [(k, self.recognised[k]) for k in order if k in self.recognised]

    def unsure(self) -> list[str]:
        """Every CHECK note, in the order they appear in the file."""
        out = [*self.warnings, *self.notes.get("", [])]
        for key in ("title", "date", "preheader", "subtitle", "author", "greeting", "intro"):
            out += [f"{key}: {n}" for n in self.notes.get(key, [])]
        for i, s in enumerate(self.sections, start=1):
            out += [f"section {i} ({s.heading}): {n}" for n in s.notes]
            if s.image_note:
                out.append(f"section {i} ({s.heading}) picture: {s.image_note}")
        out += [f"sign_off: {n}" for n in self.notes.get("sign_off", [])]
        return out


# -- reading the file -----------------------------------------------------------------


def read_briefing(path: Path, *, display: str | None = None) -> Draft:
    """Read a .txt or .docx briefing into a Draft; raise BriefingError if it cannot be."""
    name = display or str(path)
    try:
        if path.is_dir():
            raise BriefingError(f"{name} is a folder, not a briefing file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise BriefingError(f"{name} not found; check the name and the folder") from None
    except OSError as exc:
        raise BriefingError(f"{name} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BriefingError(
            f"{name} is {len(data) // (1024 * 1024)} MB, far more than a briefing; "
            "is it the right file?"
        )
    if not data.strip():
        raise BriefingError(f"{name} is empty; there is nothing to import")
    suffix = path.suffix.lower()
    warnings: list[str] = []
    kind = _sniff(data, name)
    if kind == "docx":
        if suffix != ".docx":
            warnings.append(f"{name} is a Word document (.docx) by its contents; read it as one")
        blocks, images, more = _docx_blocks(data, name)
        warnings += more
        for n, picture in enumerate(images, start=1):
            if picture.extension not in ("png", "jpg", "gif", "webp", "svg"):
                warnings.append(
                    f"picture {n} is a .{picture.extension or '?'} file, which email programs "
                    "cannot show; save it as PNG or JPEG in Word and import again"
                )
    else:
        if suffix == ".docx":
            warnings.append(
                f"{name} is not a Word document but plain text; read it as text "
                "(rename it to .txt to avoid this warning)"
            )
        text, more = _decode(data, name)
        warnings += more
        blocks, images = _text_blocks(text), []
    if not any(b.plain.strip() or b.items or b.quote for b in blocks):
        raise BriefingError(f"{name} has no text to import")
    draft = _structure(blocks, name)
    draft.images = images
    draft.warnings = warnings + draft.warnings
    return draft


_MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF", "a PDF; open it, copy the text into a .txt file (or save it as Word .docx)"),
    (
        b"\xd0\xcf\x11\xe0",
        "an old Word (.doc) or Office file; open it in Word and Save As 'Word Document (.docx)'",
    ),
    (b"{\\rtf", "a Rich Text (.rtf) file; open it in Word and Save As 'Word Document (.docx)'"),
    (b"\x89PNG", "a picture (PNG), not a briefing"),
    (b"\xff\xd8\xff", "a picture (JPEG), not a briefing"),
    (b"GIF8", "a picture (GIF), not a briefing"),
]


def _sniff(data: bytes, name: str) -> Literal["docx", "text"]:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise BriefingError(f"{name} is {what}")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = set(z.namelist())
                mimetype = (
                    z.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
                )
        except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, ValueError):
            raise BriefingError(
                f"{name} is a damaged zip file, not a Word document we can read; "
                "open it in Word and save it again as .docx"
            ) from None
        if "word/document.xml" in names:
            return "docx"
        if "opendocument" in mimetype:
            raise BriefingError(
                f"{name} is an OpenDocument (.odt) file; save it as 'Word Document (.docx)' first"
            )
        raise BriefingError(
            f"{name} is a zip file of something else, not a Word document "
            "(it holds no word/document.xml); open the briefing in Word and save it as .docx"
        )
    return "text"


def _decode(data: bytes, name: str) -> tuple[str, list[str]]:
    """Text from bytes: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 with a warning."""
    warnings: list[str] = []
    text: str | None = None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise BriefingError(f"{name} says it is UTF-16 text but is not") from None
    elif b"\x00" in data[:4096]:
        even, odd = data[0:4096:2], data[1:4096:2]
        for zeros, codec in ((even, "utf-16-be"), (odd, "utf-16-le")):
            if zeros.count(0) > 0.4 * len(zeros):
                try:
                    text = data.decode(codec)
                except UnicodeDecodeError:
                    text = None
                break
        if text is None:
            raise BriefingError(
                f"{name} is not text (it looks like a binary file); "
                "import a .txt or a Word .docx briefing"
            )
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            try:
                text = data.decode("cp1252")
                codec = "Windows-1252 (Western European)"
            except UnicodeDecodeError:
                text = data.decode("latin-1")
                codec = "Latin-1"
            warnings.append(
                f"{name} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
                f"read it as {codec}: check quotes, dashes and accented letters"
            )
    controls = sum(
        1 for c in text if (ord(c) < 32 and c not in "\t\n\r\f\v") or 0x7F <= ord(c) < 0xA0
    )
    if controls > max(2, len(text) // 100):
        raise BriefingError(
            f"{name} is not text (it looks like a binary file); "
            "import a .txt or a Word .docx briefing"
        )
    return text, warnings


# -- plain text -> blocks ---------------------------------------------------------------

_BULLET = re.compile(r"^(?P<indent>[ \t]*)(?:[•●▪■◦○·‣⁃]\s*|[-*+–—]\s+|(?<=\s)o\s+)(?P<text>\S.*)$")
_NUMBERED = re.compile(r"^\s*(?P<n>\d{1,2})[.)]\s+(?P<text>\S.*)$")
_QUOTE_LINE = re.compile(r"^\s*>\s?(?P<text>.*)$")
_SUB_BULLETS = "◦○o"


def _clean(text: str) -> str:
    """Line breaks made plain, characters YAML cannot hold removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2029", "\n\n").replace("\u2028", "\n").replace("\x85", "\n")
    text = text.replace("\f", "\n\n").replace("\v", "\n").replace("\ufeff", "")
    return re.sub(r"[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "", text)


def _space(text: str) -> str:
    """Whitespace (non-breaking spaces and tabs too) made single spaces."""
    return re.sub(r"\s+", " ", text).strip()


def _text_blocks(text: str) -> list[Block]:
    lines = _clean(text).split("\n")
    groups: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for n, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                groups.append((n, current))
            current.append(line)
        else:
            current = []
    blocks: list[Block] = []
    for i, (start, group) in enumerate(groups):
        if i == 0 and _title_shape(group[0]):
            # The title is the first line; lines right under it (author, date) stand alone.
            for k, line in enumerate(group):
                blocks.append(_para(_space(line), start + k))
            continue
        blocks += _group_blocks(group, start)
    return _merge_lists(blocks)


def _para(text: str, line: int | None, *, lines: list[str] | None = None) -> Block:
    numbered = _NUMBERED.match(text)
    return Block(
        "para",
        md=_md_text(text),
        plain=text,
        line=line,
        number=int(numbered.group("n")) if numbered else None,
        lines=lines if lines is not None else [text],
    )


def _short(line: str, words: int = 10, chars: int = 80) -> bool:
    return len(line) <= chars and len(line.split()) <= words


def _group_blocks(group: list[str], start: int) -> list[Block]:
    """One run of non-blank lines -> paragraphs, lists and quotes."""
    if all(_QUOTE_LINE.match(ln) for ln in group):
        inner = [_QUOTE_LINE.match(ln).group("text") for ln in group]  # type: ignore[union-attr]
        paras = [_space(p) for p in "\n".join(inner).split("\n\n") if p.strip()]
        return [
            Block("quote", plain=" ".join(paras), quote=[_md_text(p) for p in paras], line=start)
        ]
    numbered = [ln for ln in group if _NUMBERED.match(ln)]
    bullets = [ln for ln in group if _BULLET.match(ln)]
    if not bullets and len(numbered) < 2:
        stripped = [ln.strip() for ln in group]
        if len(group) == 1:
            return [_para(_space(group[0]), start)]
        first = _NUMBERED.match(group[0])
        if first and _heading_shape(first.group("text"), 15):
            # "1. Heading" with its text on the very next line.
            return [_para(_space(group[0]), start), *_group_blocks(group[1:], start + 1)]
        if all(_short(s, 10, 70) for s in stripped):
            if all(_starts_upper(s) for s in stripped) and not any(
                s[-1] in ",;:" for s in stripped
            ):
                # Short lines, each a name or item: a list of names.
                items = [Item(_md_text(_space(s))) for s in stripped]
                return [
                    Block(
                        "list",
                        plain=" ".join(stripped),
                        items=items,
                        lines=[_space(s) for s in stripped],
                        line=start,
                        names=True,
                    )
                ]
            # Short lines that read as lines (an address, "Contact:" and names): keep the breaks.
            block = _para(_space(" ".join(stripped)), start, lines=[_space(s) for s in stripped])
            block.md = "\\\n".join(_md_text(_space(s)) for s in stripped)
            return [block]
        return [_para(_space(" ".join(stripped)), start)]
    # A mix of text and list lines: paragraphs, then lists, in the order written.
    out: list[Block] = []
    prose: list[str] = []
    items: list[tuple[int, str]] = []  # (indent, text)
    ordered = False
    list_start = start

    def flush_prose() -> None:
        if prose:
            out.append(_para(_space(" ".join(prose)), start))
            prose.clear()

    def flush_list() -> None:
        if items:
            out.append(_list_block(items, ordered, list_start))
            items.clear()

    for k, line in enumerate(group):
        bullet = _BULLET.match(line)
        number = _NUMBERED.match(line) if len(numbered) >= 2 else None
        if bullet or number:
            flush_prose()
            is_ordered = number is not None and not bullet
            if items and is_ordered != ordered:
                flush_list()
            if not items:
                ordered, list_start = is_ordered, start + k
            if bullet:
                marker = line.lstrip()[:1]
                indent = len(bullet.group("indent").expandtabs(4)) + (
                    4 if marker in _SUB_BULLETS else 0
                )
                items.append((indent, bullet.group("text")))
            else:
                assert number is not None
                items.append((len(line) - len(line.lstrip()), number.group("text")))
        elif items and (line[:1].isspace() or line.strip()[:1].islower()):
            indent, previous = items[-1]
            items[-1] = (indent, previous + " " + line.strip())  # an item running on
        else:
            flush_list()
            prose.append(line.strip())
    flush_prose()
    flush_list()
    return out


def _list_block(items: list[tuple[int, str]], ordered: bool, line: int) -> Block:
    """Items with their indentation -> a list, deeper items nested under the one before."""
    base = min(indent for indent, _ in items)
    block = Block("list", ordered=ordered, line=line)
    for indent, text in items:
        text = _space(text)
        if indent > base and block.items:
            parent = block.items[-1]
            if parent.sub is None:
                parent.sub = Block("list")
            parent.sub.items.append(Item(_md_text(text)))
            parent.sub.plain += " " + text
        else:
            block.items.append(Item(_md_text(text)))
        block.plain += " " + text
        block.lines.append(text)
    block.plain = block.plain.strip()
    return block


def _merge_lists(blocks: list[Block]) -> list[Block]:
    """Bullet lists split by blank lines are one list."""
    out: list[Block] = []
    for b in blocks:
        prev = out[-1] if out else None
        if (
            prev is not None
            and b.kind == prev.kind == "list"
            and b.ordered == prev.ordered
            and not (b.names or prev.names)
        ):
            prev.items += b.items
            prev.plain += " " + b.plain
            prev.lines += b.lines
            continue
        out.append(b)
    return out


def _starts_upper(s: str) -> bool:
    core = s.lstrip("\"'“‘(«[")
    return bool(core) and (core[0].isupper() or core[0].isdigit())


# -- Word (.docx) -> blocks ----------------------------------------------------------------

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


# -- Markdown escaping -----------------------------------------------------------------------

_URL = re.compile(
    # Only characters a link keeps as they are (a dash or '[' ends it): the text part
    # then shows the address exactly as written.
    r"\b(?:https?://|mailto:)(?:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+"
    r"|(?<![\w.+-])[A-Za-z0-9.+_-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\b"
)
_TRAILING = ".,;:!?)]}'’\""


def _md_text(text: str) -> str:
    """Plain text as Markdown that shows exactly that text; web and email addresses as links."""
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(text):
        url = m.group()
        while (
            url
            and url[-1] in _TRAILING
            and not (url[-1] == ")" and url.count("(") >= url.count(")"))
        ):
            url = url[:-1]
        scheme = re.match(r"https?://|mailto:", m.group())
        if scheme and not re.match(r"[A-Za-z0-9]", url[scheme.end() :]):
            continue  # a scheme with nothing (or only punctuation) after it
        out.append(_escape_inline(text[pos : m.start()]))
        out.append("<" + url.replace("{", "%7B").replace("}", "%7D") + ">")
        pos = m.start() + len(url)
    out.append(_escape_inline(text[pos:]))
    return "".join(out)


def _escape_inline(text: str) -> str:
    text = text.replace("\\", "\\\\")
    text = re.sub(r"([`*<\[\]])", r"\\\1", text)  # < could start an autolink
    # An underscore between letters never makes emphasis; elsewhere it might.
    text = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)
    text = re.sub(r"&(?=#?\w+;)", r"\\&", text)
    return text


_LINE_START = [
    (re.compile(r"^(#{1,6})(?=\s|$)"), r"\\\1"),  # heading
    (re.compile(r"^>"), r"\\>"),  # quote
    (re.compile(r"^([-+])(?=\s|$)"), r"\\\1"),  # bullet ("*" is escaped everywhere)
    (re.compile(r"^(\d{1,9})([.)])(?=\s|$)"), r"\1\\\2"),  # "1. " ordered list
    (re.compile(r"^([-=])(?=[-=\s]*$)"), r"\\\1"),  # a rule, or a heading's underline
    (re.compile(r"^(`{3,}|~{3,})"), r"\\\1"),  # code fence
]


def _escape_line_start(md: str) -> str:
    """Escape what Markdown would read as structure at the start of each line."""
    lines = md.split("\n")
    out = []
    for line in lines:
        for pattern, repl in _LINE_START:
            line = pattern.sub(repl, line, count=1)
        out.append(line)
    return "\n".join(out)


def _defuse(text: str) -> tuple[str, list[str]]:
    """Template syntax, which the issue loader rejects, broken up with a space.

    '{{', '{%' and '{#' become '{ {', '{ %' and '{ #': the reader sees almost
    the same text and nothing in it is read as a template. Markdown cannot hide
    them (a backslash or an HTML entity turns back into '{{' in the rendered
    email, where the per-person stage looks for placeholders), and even a
    well-formed '{{ name }}' in a briefing is far more likely to be text than a
    placeholder meant for this tool: the officer can remove the space.
    """
    out: list[str] = []
    found: list[str] = []
    pos = 0
    for m in re.finditer(r"\{(?=[{%#])", text):
        out += [text[pos : m.end()], " "]
        pos = m.end()
        close = {"{": "}}", "%": "%}", "#": "#}"}[text[m.end()]]
        end = text.find(close, m.end() + 1)
        if 0 <= end < m.start() + 40:
            found.append(text[m.start() : end + 2])
        else:
            found.append(text[m.start() : m.start() + 12] + "…")
    out.append(text[pos:])
    return "".join(out), found


# -- recognising the parts of an issue ---------------------------------------------------------

_MONTHS = {
    m.lower(): i
    for i, names in enumerate(
        [
            ("January", "Jan"),
            ("February", "Feb"),
            ("March", "Mar"),
            ("April", "Apr"),
            ("May",),
            ("June", "Jun"),
            ("July", "Jul"),
            ("August", "Aug"),
            ("September", "Sep", "Sept"),
            ("October", "Oct"),
            ("November", "Nov"),
            ("December", "Dec"),
        ],
        start=1,
    )
    for m in names
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s+)?"
_DATES = [
    (
        re.compile(
            _WEEKDAY + r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+(\d{4})\b",
            re.I,
        ),
        "dmy",
    ),
    (
        re.compile(_WEEKDAY + r"\b" + _MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I),
        "mdy",
    ),
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "iso"),
    (re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b"), "dmy-num"),
]
_MONTH_ONLY = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
    r"(?:\s+(\d{4}))?\b"
)
_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
_SEPARATORS = " \t-–—|:,;·/"

_NAME = r"[A-Z][\w’'.-]*(?:\s+(?:[A-Z][\w’'.-]*|de|van|von|der|le|la|da|di|du|al|bin)){0,3}"
_POSSESSIVE = re.compile(r"^(?P<name>[A-Z][\w.-]*(?:\s+[A-Z][\w’'.-]*){1,3})[’']s?\s+\S")
_NOT_A_PERSON = re.compile(
    r"^(The|A|An|Our|My|Your|This|Their)\b|\b(Council|Services?|Schools?|Team|Trust|Department|"
    r"Directorate|Authority|Board|Partnership|Academy|College|University|City|Centre|Group|"
    r"Children|Families|Education)$"
)
_AUTHOR_LINE = re.compile(
    r"^(?:[Bb]y\s+)?(?P<name>" + _NAME + r")\s*(?:,|\s[-–—]\s)\s*(?P<role>\S.*)$"
)
_BY_LINE = re.compile(r"^[Bb]y\s+(?P<name>" + _NAME + r")$")
_ROLE_WORDS = re.compile(
    r"\b(Director|Head|Headteacher|Manager|Officer|Chief|Executive|Leader|Lead|Member|Chair|"
    r"Councillor|Cabinet|Principal|President|Secretary|Coordinator|Co-ordinator|Commissioner|"
    r"Assistant|Deputy|Strategic|Editor|Team)\b"
)
_GREETING = re.compile(
    r"^(?:(?:dear|hello|hi|hey|good (?:morning|afternoon|evening)|greetings|welcome|to all)\b"
    r"|all,|colleagues,?$)",
    re.I,
)
_CLOSING = re.compile(
    r"^((with )?(best|kind|warm|warmest|many) (wishes|regards|thanks)|regards|thanks|"
    r"thank you|hope to see you|see you|take care|all the best|yours|cheers|speak soon|"
    r"until next time|best)\b",
    re.I,
)
_MINOR = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "of", "on"}
    | {"onto", "or", "the", "to", "with", "via", "vs", "per", "nor", "up", "over", "than"}
    | {"&", "–", "—", "-", "and/or"}
)


def _find_date(text: str) -> tuple[dt.date, re.Match[str]] | None:
    for pattern, kind in _DATES:
        for m in pattern.finditer(text):
            try:
                if kind == "dmy":
                    d = dt.date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
                elif kind == "mdy":
                    d = dt.date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
                elif kind == "iso":
                    d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                else:
                    d = dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            except ValueError:
                continue
            return d, m
    return None


def _title_case(text: str) -> bool:
    words = [w for w in text.split() if any(c.isalpha() for c in w)]
    if not words:
        return False
    for i, w in enumerate(words):
        core = w.lstrip("\"'“‘(«[")
        if not core:
            continue
        if i > 0 and core.lower().strip(",.;:!?…’'\")") in _MINOR:
            continue
        if not (core[0].isupper() or core[0].isdigit()):
            return False
    return True


def _title_shape(text: str) -> bool:
    """One line of at most 20 words: the title (a long first line is a paragraph)."""
    text = _space(text)
    return bool(text) and len(text) <= 150 and len(text.split()) <= 20


def _heading_shape(text: str, max_words: int = 12) -> bool:
    """Short, one line, not a sentence: could be a heading."""
    text = text.strip()
    if not text or "\n" in text or len(text) > 100 or len(text.split()) > max_words:
        return False
    if text.endswith(("...", "…")):
        pass
    elif text[-1] in ".,;:-–—(":
        return False
    return not (re.search(r"[.!?]\s+[A-Z]", text) or _URL.search(text))


def _structure(blocks: list[Block], name: str) -> Draft:
    draft = Draft(source=name, title="", date=dt.date.today(), sections=[])
    i = 0
    # Title: a Word "Title", else the first line.
    titled = next((k for k, b in enumerate(blocks[:3]) if b.style == "title"), None)
    if titled is not None:
        first = blocks.pop(titled)
    else:
        first = blocks[0]
        if first.kind in ("para", "heading") and _title_shape(first.plain):
            blocks.pop(0)
        else:
            first = Block("para", plain="")
    title_text, date_found = _title_and_date(first.plain, draft)
    draft.title = title_text or "TODO: title"
    draft.recognised["title"] = title_text or "none found"
    if not title_text:
        draft.note("title", "no title line found at the top; write the title")

    author = _POSSESSIVE.match(draft.title)
    if author and not _NOT_A_PERSON.search(author.group("name")):
        draft.author_name = author.group("name")
        draft.recognised["author"] = f"{draft.author_name} (from the title)"

    # Lines under the title: a date, the author, a subtitle.
    while i < len(blocks) and i < 3:
        b = blocks[i]
        if b.kind != "para" or not _short(b.plain, 25, 200):
            break
        if b.style == "subtitle" and not draft.subtitle:
            draft.subtitle = b.plain
            i += 1
            continue
        found = _find_date(b.plain)
        if found and not date_found and len(b.plain) - len(found[1].group()) < 12:
            draft.date = found[0]
            date_found = True
            draft.recognised["date"] = f"{found[0].isoformat()} (under the title)"
            i += 1
            continue
        if _author_line(b.plain, draft):
            i += 1
            continue
        if not _GREETING.match(b.plain) and _is_greeting(blocks, i + 1) and not draft.subtitle:
            draft.subtitle = b.plain
            draft.recognised["subtitle"] = b.plain
            i += 1
            continue
        break
    if i < len(blocks) and _is_greeting(blocks, i):
        draft.greeting = blocks[i].plain
        draft.recognised["greeting"] = draft.greeting
        draft.note(
            "greeting",
            "kept as written. To greet each person by name, write instead:\n"
            'greeting: Dear {{ first_name | default("colleagues") }},',
        )
        i += 1
    body = blocks[i:]
    if not body:
        raise BriefingError(
            f"{name} has nothing after its title and greeting; there are no sections to import"
        )

    sign_off, body = _split_sign_off(body, draft)
    if draft.author_name and not draft.author_role:
        where = "the title" if "title" in draft.recognised.get("author", "") else "a 'By' line"
        draft.note(
            "author",
            f"'{draft.author_name}' was taken from {where}; check it, and add "
            "'role: …' under it if the issue should show their role",
        )
    if not date_found:
        _guess_date(draft, blocks)

    heads, numbered = _headings(body)
    draft.numbered = numbered
    _build_sections(draft, body, heads)
    if sign_off:
        draft.sign_off = "\n\n".join(_escape_line_start(_md_text(line)) for line in sign_off)
        draft.recognised["sign-off"] = f"{len(sign_off)} line(s): {' / '.join(sign_off)}"
    if draft.sections:
        draft.preheader = _preheader(draft)
        draft.note("preheader", "made from the section headings; write a one-line summary")
    _defuse_all(draft)
    return draft


def _title_and_date(text: str, draft: Draft) -> tuple[str, bool]:
    """The title without a date at its start or end; True when a full date was found."""
    text = _space(text)
    found = _find_date(text)
    if found:
        d, m = found
        before, after = text[: m.start()].rstrip(_SEPARATORS), text[m.end() :].lstrip(_SEPARATORS)
        if not after and before:
            text = before
        elif not before and after:
            text = after
        draft.date = d
        draft.recognised["date"] = f"{d.isoformat()} (in the title)"
        return text, True
    return text, False


def _author_line(text: str, draft: Draft) -> bool:
    """'Steve Kay, Director of …' (or 'By Steve Kay') under the title: the author."""
    by = _BY_LINE.match(text)
    if by:
        draft.author_name = by.group("name")
        draft.recognised["author"] = f"{draft.author_name} (a 'By' line)"
        return True
    m = _AUTHOR_LINE.match(text)
    if not m:
        return False
    name, role = m.group("name").strip(), m.group("role").strip()
    known = draft.author_name
    if known and not name.startswith(known):
        return False
    if not known and not _ROLE_WORDS.search(role):
        return False
    # "…EmployabilityRegular Blog …": two lines run together when pasted.
    joined = re.search(r"(?<=[a-z]{3})(?=[A-Z][a-z])", role)  # not "McKay", "MacLeod"
    if joined and len(role[joined.start() :].split()) >= 3:
        rest = _space(role[joined.start() :])
        role = role[: joined.start()].strip()
        draft.subtitle = draft.subtitle or rest
        draft.note(
            "subtitle",
            f"the line '{_space(text)}' looked like two run together (a paste); "
            "it was split into the author's role and this subtitle",
        )
        draft.recognised["subtitle"] = rest
    draft.author_name = name
    draft.author_role = role
    draft.recognised["author"] = f"{name}, {role}"
    return True


def _is_greeting(blocks: list[Block], i: int) -> bool:
    if i >= len(blocks) or blocks[i].kind != "para":
        return False
    text = blocks[i].plain
    return bool(_GREETING.match(text)) and _short(text, 8, 70)


def _split_sign_off(body: list[Block], draft: Draft) -> tuple[list[str], list[Block]]:
    """The closing lines after the last section: 'Hope to see you soon!', 'Steve'."""
    lines: list[str] = []
    k = len(body)
    while k > 1:
        b = body[k - 1]
        short = (
            b.kind in ("para", "list")
            and not b.bold
            and b.lines
            and all(_short(ln, 10, 80) for ln in b.lines)
            and (b.kind == "para" or b.names)
        )
        if not short:
            break
        lines = b.lines + lines
        k -= 1
    if not lines:
        return [], body
    names = {n for n in (draft.author_name, (draft.author_name or "").split(" ")[0]) if n}
    start = next((j for j, ln in enumerate(lines) if _CLOSING.match(ln)), None)
    if start is None:
        start = next(
            (j for j, ln in enumerate(lines) if any(ln.startswith(n) for n in names)), None
        )
    if start is None:
        return [], body
    # Whole blocks only: the first block holding the start line, and all after it.
    count = 0
    cut = len(body)
    for j in range(k, len(body)):
        if count + len(body[j].lines) > start:
            cut = j
            break
        count += len(body[j].lines)
    lines = [ln for b in body[cut:] for ln in b.lines]
    for ln in lines:
        sig = _AUTHOR_LINE.match(ln)
        if sig and _ROLE_WORDS.search(sig.group("role")):
            name, role = sig.group("name").strip(), sig.group("role").strip()
            if not draft.author_name:
                draft.author_name, draft.author_role = name, role
                draft.recognised["author"] = f"{name}, {role} (from the sign-off)"
                draft.note("author", "taken from the signature at the end; check it")
            elif name == draft.author_name and not draft.author_role:
                draft.author_role = role
    return lines, body[:cut]


def _guess_date(draft: Draft, blocks: list[Block]) -> None:
    """No full date at the top: a month in the title, years in the text, or today."""
    text = " ".join(b.plain for b in blocks)
    month = _MONTH_ONLY.search(draft.title)
    years = Counter(int(y) for y in _YEAR.findall(text))
    if month:
        number = _MONTHS[month.group(1).lower()]
        if month.group(2):
            year, why = int(month.group(2)), f"{month.group(2)} is in the title"
        elif years:
            year = max(years, key=lambda y: (years[y], y))
            why = f"{year} is the year the text mentions most"
        else:
            year, why = dt.date.today().year, "the text names no year, so this year is used"
        draft.date = dt.date(year, number, 1)
        draft.note(
            "date",
            f"the briefing says '{month.group()}' but not the day"
            + ("" if month.group(2) else " or the year")
            + f"; {why}. Write the date it goes out, as YYYY-MM-DD",
        )
        draft.recognised["date"] = f"{draft.date.isoformat()} (a guess: check it)"
        return
    draft.date = dt.date.today()
    draft.note("date", "no date found in the briefing; today's date is used. Write the right one")
    draft.recognised["date"] = f"{draft.date.isoformat()} (today: none in the briefing)"


def _headings(body: list[Block]) -> tuple[dict[int, str], bool]:
    """Which blocks start a section ({index: heading}), and whether they are numbered.

    One kind of heading per briefing: Word's heading styles if it uses them,
    else numbered lines ("1. Adoption") if there are two or more, else short
    lines standing alone between paragraphs, in title case (or all bold).
    """
    explicit = [k for k, b in enumerate(body) if b.kind == "heading"]
    if explicit:
        top = min(body[k].level for k in explicit)
        heads = {k: body[k].plain for k in explicit if body[k].level == top}
        nums = {k: _NUMBERED.match(text) for k, text in heads.items()}
        if len(heads) >= 2 and all(nums.values()):
            return {k: m.group("text") for k, m in nums.items() if m}, True
        return heads, False

    def alone(k: int, candidate: set[int]) -> bool:
        return k + 1 < len(body) and (k + 1) not in candidate and (k - 1) not in candidate

    numbered = {
        k
        for k, b in enumerate(body)
        if b.kind == "para"
        and b.number is not None
        and "\n" not in b.plain
        and _heading_shape(_NUMBERED.match(b.plain).group("text"), 15)  # type: ignore[union-attr]
    }
    numbered = {k for k in numbered if alone(k, numbered)}
    if len(numbered) >= 2:
        matches = {k: _NUMBERED.match(body[k].plain) for k in sorted(numbered)}
        return {k: m.group("text") for k, m in matches.items() if m}, True
    candidates = {
        k
        for k, b in enumerate(body)
        if b.kind == "para"
        and len(b.lines) <= 1
        and _heading_shape(b.plain)
        and (b.bold or _title_case(b.plain))
    }
    return {k: body[k].plain for k in sorted(candidates) if alone(k, candidates)}, False


def _build_sections(draft: Draft, body: list[Block], heads: dict[int, str]) -> None:
    if not heads:
        draft.sections = [DraftSection(draft.title)]
        draft.sections[0].notes.append(
            "no headings found, so the whole text is one section under the title; "
            "split it with more '- heading:' entries"
        )
        chunks = [body]
    else:
        first = min(heads)
        intro = body[:first]
        if intro:
            draft.intro = _markdown(intro, draft, None)
            paras = sum(1 for b in intro if b.kind != "image")
            draft.recognised["intro"] = f"{paras} paragraph(s) before the first heading"
        chunks = []
        order = sorted(heads)
        for n, k in enumerate(order):
            end = order[n + 1] if n + 1 < len(order) else len(body)
            draft.sections.append(DraftSection(heads[k]))
            chunks.append(body[k + 1 : end])
    for section, chunk in zip(draft.sections, chunks, strict=True):
        section.body = _markdown(chunk, draft, section)
        if not section.body and section.image is None:
            section.notes.append("this section has no text under its heading")
    numbers = [_NUMBERED.match(body[k].plain) for k in sorted(heads)]
    found = [int(m.group("n")) for m in numbers if m]
    if draft.numbered and found != list(range(found[0], found[0] + len(found))):
        draft.note(
            "",
            f"the headings are numbered {', '.join(map(str, found))}: is a section missing, "
            "or a heading not recognised?",
        )
    headings = ", ".join(s.heading for s in draft.sections)
    kind = " numbered" if draft.numbered else ""
    draft.recognised["sections"] = f"{len(draft.sections)}{kind}: {headings}"


def _markdown(blocks: list[Block], draft: Draft, section: DraftSection | None) -> str:
    """Blocks -> Markdown; pictures become the section's image (one per section)."""
    parts: list[str] = []
    for b in _ordered_runs(blocks):
        if b.kind == "image":
            pic = draft.images[b.image] if b.image < len(draft.images) else None
            if section is not None and section.image is None:
                section.image = b.image
                section.image_note = (
                    "the alt text came from Word; check it describes the picture"
                    if pic and pic.alt
                    else "replace the alt text with what the picture shows, for people who "
                    "cannot see it"
                )
            else:
                where = (
                    f"section '{section.heading}'"
                    if section
                    else "the text before the first heading"
                )
                draft.note(
                    "",
                    f"picture {b.image + 1} in {where} was saved to images/ but is not in the "
                    "issue (an issue has one picture per section); add it to a section if wanted",
                )
            continue
        parts.append(_block_md(b))
    return "\n\n".join(p for p in parts if p.strip())


def _ordered_runs(blocks: list[Block]) -> list[Block]:
    """Paragraphs written '1. …', '2. …' one after the other: an ordered list."""
    out: list[Block] = []
    for k, b in enumerate(blocks):
        m = _NUMBERED.match(b.plain) if b.kind == "para" and "\n" not in b.plain else None
        if m is None or b.number is None:
            out.append(b)
            continue
        prev = out[-1] if out else None
        nxt = blocks[k + 1] if k + 1 < len(blocks) else None
        item = Item(re.sub(r"^\s*\d{1,2}[.)]\s+", "", b.md))  # bold and links kept
        if (
            prev is not None
            and prev.kind == "list"
            and prev.ordered
            and prev.number == b.number - 1
        ):
            prev.items.append(item)
            prev.number = b.number
        elif nxt is not None and nxt.kind == "para" and nxt.number == b.number + 1:
            out.append(Block("list", ordered=True, items=[item], number=b.number))
        else:
            out.append(b)
    return out


def _block_md(b: Block) -> str:
    if b.kind == "heading":  # a smaller heading inside a section
        return "### " + _escape_inline(b.plain)
    if b.kind == "list":
        return _list_md(b, "")
    if b.kind == "quote":
        paras = [_escape_line_start(p) for p in b.quote]
        return "\n>\n".join("\n".join("> " + ln for ln in p.split("\n")) for p in paras)
    return _escape_line_start(b.md)


def _list_md(b: Block, indent: str) -> str:
    lines = []
    start = b.number - len(b.items) + 1 if b.ordered and b.number else 1
    for n, item in enumerate(b.items, start=start):
        marker = f"{n}. " if b.ordered else "- "
        pad = indent + " " * len(marker)
        text = _escape_line_start(item.md).replace("\n", "\n" + pad)
        lines.append(indent + marker + text)
        if item.sub is not None:
            lines.append(_list_md(item.sub, pad))
    return "\n".join(lines)


def _preheader(draft: Draft) -> str:
    out = ""
    for s in draft.sections:
        nxt = f"{out}, {s.heading}" if out else s.heading
        if len(nxt) > 100:
            return out + ", …"
        out = nxt
    return out


def _defuse_all(draft: Draft) -> None:
    found: list[str] = []

    def fix(value: str | None) -> str | None:
        if value is None:
            return None
        fixed, bad = _defuse(value)
        found.extend(bad)
        return fixed

    for key in (
        "title",
        "subtitle",
        "author_name",
        "author_role",
        "greeting",
        "intro",
        "sign_off",
        "preheader",
    ):
        setattr(draft, key, fix(getattr(draft, key)))
    for s in draft.sections:
        s.heading = fix(s.heading) or s.heading
        s.body = fix(s.body) or ""
    if found:
        draft.note(
            "",
            "template syntax in the briefing was broken up with a space ('{ {'), so that "
            f"it is shown as written: {'  '.join(dict.fromkeys(found))}. If one was meant as a "
            "placeholder filled in for each person, remove the space",
        )


# -- writing the YAML ---------------------------------------------------------------------------

_PLAIN_SCALAR = re.compile(r"^[^\s\-?:,\[\]{}#&*!|>'\"%@`][^\t]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(value: str) -> str:
    """A one-line YAML value: plain where YAML reads it back unchanged, else double-quoted."""
    plain = (
        _PLAIN_SCALAR.match(value)
        and "\n" not in value
        and ": " not in value
        and " #" not in value
        and not value.endswith((":", " "))
        and value.lower() not in _YAML_WORDS
    )
    return value if plain else json.dumps(value, ensure_ascii=False)


def _block_scalar(key: str, text: str, indent: str) -> list[str]:
    out = [f"{indent}{key}: |"]
    for line in text.split("\n"):
        out.append(f"{indent}  {line.rstrip()}" if line.strip() else "")
    return out


def _comment(text: str, indent: str = "", prefix: str = "") -> list[str]:
    """Comment lines wrapped at 90 columns; a part after a newline starts its own line."""
    width = max(40, 88 - len(indent) - len(prefix))
    out = []
    for part in text.split("\n"):
        lines = textwrap.wrap(part, width=width, break_long_words=False, break_on_hyphens=False)
        for line in lines:
            lead = prefix if not out else " " * len(prefix)
            out.append(f"{indent}# {lead}{line}".rstrip())
    return out


def image_names(draft: Draft, out: Path) -> list[str]:
    """Where each picture goes, relative to the YAML file: images/<slug>-<n>.<ext>."""
    return [
        f"images/{out.stem}-{n}.{p.extension or 'bin'}" for n, p in enumerate(draft.images, start=1)
    ]


def render_yaml(
    draft: Draft,
    out: Path,
    *,
    display: str | None = None,
    template: str | None = None,
    lists: Sequence[str] = (),
) -> str:
    """The draft as a readable YAML issue, with CHECK comments where it was unsure."""
    shown = display or str(out)
    names = image_names(draft, out)
    template = template or draft.template
    lines: list[str] = []
    lines += _comment(f"Draft issue imported from {draft.source} by 'newsletter import'.")
    lines.append("# Recognised:")
    for what, value in draft.summary():
        if what == "sections":
            value = f"{len(draft.sections)}" + (" (numbered)" if draft.numbered else "")
        lines += _comment(value, "", f"  {what:<9} ")
    lines += _comment(
        "Read it through against the briefing, fix every line marked CHECK (and delete "
        "the CHECK comment), then run:"
    )
    lines.append(f"#   newsletter check {shown}")
    unsure = draft.unsure()
    if unsure:
        lines.append("#")
        general = draft.warnings + draft.notes.get("", [])
        lines += _comment(
            f"The importer was unsure about {len(unsure)} thing(s), each marked '# CHECK:'"
            + (" (these are about the whole file):" if general else ".")
        )
        for note in general:
            lines += _comment(note, prefix="CHECK: ")
    lines.append("")

    def notes(key: str, indent: str = "") -> None:
        for note in draft.notes.get(key, []):
            lines.extend(_comment(note, indent, "CHECK: "))

    notes("title")
    lines.append(f"title: {_scalar(draft.title)}")
    notes("date")
    lines.append(f"date: {draft.date.isoformat()}")
    notes("preheader")
    if draft.preheader:
        lines.append(f"preheader: {_scalar(draft.preheader)}")
    lines += _comment(
        f"template: '{TEMPLATE_NUMBERED}' for numbered briefings, '{TEMPLATE_PLAIN}' otherwise"
    )
    lines.append(f"template: {_scalar(template)}")
    if draft.numbered:
        lines += _comment("the briefing numbered its headings; the template numbers them again")
    lines.append(f"numbered: {'true' if draft.numbered else 'false'}")
    notes("subtitle")
    if draft.subtitle:
        lines.append(f"subtitle: {_scalar(draft.subtitle)}")
    notes("author")
    if draft.author_name:
        lines.append("author:")
        lines.append(f"  name: {_scalar(draft.author_name)}")
        if draft.author_role:
            lines.append(f"  role: {_scalar(draft.author_role)}")
    notes("greeting")
    if draft.greeting:
        lines.append(f"greeting: {_scalar(draft.greeting)}")
    notes("intro")
    if draft.intro:
        lines += _block_scalar("intro", draft.intro, "")
    lines.append("")
    lines += _comment(
        "Every section goes to everyone. To send a section to some lists only, add a line "
        "under its body such as:  audiences: ["
        + ", ".join(lists[:2] or ["headteachers"])
        + "]"
        + (f"  (lists: {', '.join(lists)})" if lists else "")
    )
    lines.append("sections:")
    for n, s in enumerate(draft.sections):
        if n:
            lines.append("")
        for note in s.notes:
            lines += _comment(note, "  ", "CHECK: ")
        lines.append(f"  - heading: {_scalar(s.heading)}")
        if s.body:
            lines += _block_scalar("body", s.body, "    ")
        if s.image is not None:
            pic = draft.images[s.image]
            alt = pic.alt.strip() if pic.alt and pic.alt.strip() else TODO_ALT
            src = names[s.image]
            if s.image_note:
                lines += _comment(s.image_note, "    ", "CHECK: ")
            lines.append(
                f"    image: {{src: {json.dumps(src)}, alt: {json.dumps(alt, ensure_ascii=False)}}}"
            )
    if draft.sign_off:
        lines.append("")
        notes("sign_off")
        lines += _block_scalar("sign_off", draft.sign_off, "")
    return "\n".join(lines).rstrip() + "\n"


def default_output(draft: Draft, folder: Path) -> Path:
    """newsletters/<date>-<slug of the title>.yaml"""
    return folder / f"{draft.date.isoformat()}-{slugify(draft.title)}.yaml"


def slugify(text: str, limit: int = 60) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    ascii_text = re.sub(r"['’]", "", ascii_text)
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > limit:
        slug = slug[:limit].rsplit("-", 1)[0]
    return slug or "briefing"


def write_draft(
    draft: Draft,
    out: Path,
    *,
    force: bool = False,
    display: str | None = None,
    template: str | None = None,
    lists: Sequence[str] = (),
) -> list[Path]:
    """Write the YAML and its pictures; never overwrite without ``force``. Returns the paths."""
    shown = display or str(out)
    names = image_names(draft, out)
    targets = [(out.parent / n, draft.images[k].data) for k, n in enumerate(names)]
    if not force:
        existing = [p for p, _ in [(out, b""), *targets] if p.exists()]
        if existing:
            raise BriefingError(
                f"{shown} already exists; nothing was written. Use --force to overwrite it, "
                "or -o to write somewhere else"
                if existing[0] == out
                else f"{existing[0]} already exists; nothing was written. Use --force to overwrite"
            )
    text = render_yaml(draft, out, display=shown, template=template, lists=lists)
    written = []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for path, data in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(path)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    except OSError as exc:
        raise BriefingError(f"{shown} could not be written: {exc.strerror or exc}") from None
    return written


__all__ = [
    "TODO_ALT",
    "BriefingError",
    "Draft",
    "DraftSection",
    "default_output",
    "image_names",
    "read_briefing",
    "render_yaml",
    "slugify",
    "write_draft",
]
