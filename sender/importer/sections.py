"""The body -> sections: which blocks are headings (Word styles, numbered lines, or short
title-case lines), and each section's Markdown and picture.
"""

from __future__ import annotations

import re

from .markdown import _escape_inline, _escape_line_start
from .model import Block, Draft, DraftSection, Item
from .shapes import _NUMBERED, _heading_shape, _title_case


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
            if pic is not None and pic.problem:
                note = (
                    f"picture {b.image + 1} was left out: it is {pic.problem}. In Word, save "
                    "the picture as PNG or JPEG, put it back in the document and import again"
                )
                if section is not None:
                    section.notes.append(note)
                else:
                    draft.note("", note)
            elif section is not None and section.image is None:
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
