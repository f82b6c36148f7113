"""Plain text -> blocks: paragraphs, lists (bulleted, numbered, or names one a line) and
quotes, found from blank lines, markers and indentation.
"""

from __future__ import annotations

import re

from .markdown import _URL, _md_text
from .model import Block, Item
from .shapes import _NUMBERED, _NUMBERED_HEAD, _clean, _heading_shape, _short, _space, _title_shape

_BULLET = re.compile(r"^(?P<indent>[ \t]*)(?:[•●▪■◦○·‣⁃]\s*|[-*+–—]\s+|(?<=\s)o\s+)(?P<text>\S.*)$")


_QUOTE_LINE = re.compile(r"^\s*>\s?(?P<text>.*)$")


_SUB_BULLETS = "◦○o"


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
    numbered = _NUMBERED_HEAD.match(text)
    return Block(
        "para",
        md=_md_text(text),
        plain=text,
        line=line,
        number=int(numbered.group("n")) if numbered else None,
        lines=lines if lines is not None else [text],
    )


def _group_blocks(group: list[str], start: int) -> list[Block]:
    """One run of non-blank lines -> paragraphs, lists and quotes."""
    group = _unwrap(group)
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
        first = _NUMBERED_HEAD.match(group[0])
        if first and _heading_shape(first.group("text"), 15):
            # "1. Heading" with its text on the very next line.
            return [_para(_space(group[0]), start), *_group_blocks(group[1:], start + 1)]
        if all(_short(s, 10, 70) for s in stripped):
            if all(_starts_upper(s) for s in stripped) and not any(
                s[-1] in ",;:" for s in stripped
            ):
                # Short lines, each a name or item: a list of names.
                names = [Item(_md_text(_space(s))) for s in stripped]
                return [
                    Block(
                        "list",
                        plain=" ".join(stripped),
                        items=names,
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


def _unwrap(group: list[str]) -> list[str]:
    """Lines an email wrapped at 72-78 columns, joined again: a line that starts in lower
    case continues the one before, and so does any line after a long line (60 or more)
    that does not end a sentence, when no line of the run is longer than 80."""
    wrapped = max(len(ln.rstrip()) for ln in group) <= 80
    out: list[str] = []
    for line in group:
        text = line.strip()
        marked = (
            _BULLET.match(line)
            or _NUMBERED_HEAD.match(line)
            or _QUOTE_LINE.match(line)
            or _URL.match(text)  # an address on a line of its own, as in a signature
        )
        prev = out[-1].rstrip() if out else ""
        if (
            prev
            and not marked
            and not _QUOTE_LINE.match(prev)
            and (text[:1].islower() or (wrapped and len(prev) >= 60 and prev[-1] not in ".!?:;"))
        ):
            out[-1] = prev + " " + text
        else:
            out.append(line)
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
