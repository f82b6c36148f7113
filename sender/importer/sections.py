"""The body -> sections: which blocks are headings (Word styles, numbered lines, or short
lines standing alone: title case, bold, questions, capitals, sentence case where the text
around supports it), and each section's Markdown, tables and pictures.

docs/import.md lists the rules; each is one small function here, tested on its own.
"""

from __future__ import annotations

import re

from .markdown import _escape_inline, _escape_line_start
from .model import TODO_ALT, Block, Draft, DraftSection, Item
from .shapes import _NUMBERED, _NUMBERED_HEAD, _heading_shape, _space, _title_case


def _headings(body: list[Block]) -> tuple[dict[int, str], bool]:
    """Which blocks start a section ({index: heading}), and whether they are numbered.

    Word's heading styles if the briefing uses them; else numbered lines ("1. Adoption",
    "1) …", "1 - …") if there are two or more; else short lines standing alone that one
    of the rules below takes for a heading.
    """
    explicit = [k for k, b in enumerate(body) if b.kind == "heading"]
    if explicit:
        top = min(body[k].level for k in explicit)
        heads = {k: body[k].plain for k in explicit if body[k].level == top}
        nums = {k: _NUMBERED_HEAD.match(text) for k, text in heads.items()}
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
        and _heading_shape(_NUMBERED_HEAD.match(b.plain).group("text"), 15)  # type: ignore[union-attr]
    }
    numbered = {k for k in numbered if alone(k, numbered)}
    if len(numbered) >= 2:
        matches = {k: _NUMBERED_HEAD.match(body[k].plain) for k in sorted(numbered)}
        return {k: m.group("text") for k, m in matches.items() if m}, True
    candidates = {
        k
        for k, b in enumerate(body)
        if b.kind == "para"
        and len(b.lines) <= 1
        and _heading_shape(b.plain)
        and any(rule(body, k) for rule in HEADING_RULES)
    }
    return {k: body[k].plain for k in sorted(candidates) if alone(k, candidates)}, False


# Each rule: is the short one-line paragraph body[k] a heading? (It already stands alone
# and has a heading's shape: at most 12 words, no sentence inside, no final full stop.)


def _bold_line(body: list[Block], k: int) -> bool:
    """Every word bold (in Word, or an email's HTML): a heading written by hand."""
    return body[k].bold


def _title_case_line(body: list[Block], k: int) -> bool:
    """'Out and About': each word capitalised but the small ones."""
    return _title_case(body[k].plain)


def _question_line(body: list[Block], k: int) -> bool:
    """'Why does attendance matter so much?', when what follows answers it."""
    return body[k].plain.rstrip().endswith("?") and _answered(body, k)


def _capitals_line(body: list[Block], k: int) -> bool:
    """'KEY DATES': four or more letters, all capitals (turned into sentence case)."""
    return _in_capitals(body[k].plain)


def _sentence_case_line(body: list[Block], k: int) -> bool:
    """'Attendance this term': at most 8 words, no end punctuation, between paragraphs
    (or at the start) and followed by a longer paragraph, a list or a table."""
    text = body[k].plain.strip()
    words = text.split()
    if len(words) > 8 or not text[:1].isupper() or text[-1] in ".,;:!?…)" or _PHATIC.match(text):
        return False
    prev = body[k - 1] if k > 0 else None
    settled = prev is None or prev.kind != "para" or len(prev.plain.split()) >= 12
    return settled and _answered(body, k)


# Short lines people write between paragraphs that are not headings: "See you there",
# "Thanks again", "Please share this with your teams".
_PHATIC = re.compile(
    r"^(?:see you|thanks|thank you|please|hope|enjoy|have a|happy|congratulations|welcome|"
    r"well done|good luck|remember|don't forget|do get in touch|any questions)\b",
    re.I,
)


def _answered(body: list[Block], k: int) -> bool:
    """The block after body[k] is the text a heading stands over: a list, a table, a
    quote, or a paragraph of 12 words or more and twice the line's."""
    nxt = body[k + 1] if k + 1 < len(body) else None
    if nxt is None:
        return False
    if nxt.kind in ("list", "table", "quote"):
        return True
    words = len(nxt.plain.split())
    return nxt.kind == "para" and words >= max(12, 2 * len(body[k].plain.split()))


HEADING_RULES = (
    _bold_line,
    _title_case_line,
    _question_line,
    _capitals_line,
    _sentence_case_line,
)


def _in_capitals(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)


# Words kept as written when a heading in capitals is put in sentence case.
_ABBREVIATIONS = {
    w.upper(): w
    for w in [
        "SEND",
        "SENCo",
        "GCSE",
        "GCSEs",
        "EHCP",
        "EHCPs",
        "CPD",
        "INSET",
        "PE",
        "PSHE",
        "RSE",
        "DSL",
        "MAT",
        "NHS",
        "UK",
        "EYFS",
        "SATs",
        "CEO",
        "AGM",
        "FAQ",
        "FAQs",
        "DBS",
        "PTA",
        "TA",
        "TAs",
        "KS1",
        "KS2",
        "KS3",
        "KS4",
        "KS5",
        "DfE",
        "Ofsted",
        "ICT",
        "HR",
        "Q&A",
        "I",
    ]
}


def _sentence_case(text: str) -> str:
    """'KEY DATES FOR SEND' -> 'Key dates for SEND'."""
    out = []
    for n, word in enumerate(text.split()):
        core = word.strip("\"'“”‘’(),:;!?.")
        known = _ABBREVIATIONS.get(core.upper())
        if known:
            out.append(word.replace(core, known))
        else:
            lower = word.lower()
            out.append(lower[:1].upper() + lower[1:] if n == 0 else lower)
    return " ".join(out)


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
            section = DraftSection(heads[k])
            if _in_capitals(heads[k]):
                section.heading = _sentence_case(heads[k])
                section.notes.append(
                    f"the heading was in capitals ('{heads[k]}'); it was put in sentence "
                    "case: check names and abbreviations"
                )
            draft.sections.append(section)
            chunks.append(body[k + 1 : end])
    for section, chunk in zip(draft.sections, chunks, strict=True):
        section.body = _markdown(chunk, draft, section)
        if not section.body and section.image is None:
            section.notes.append("this section has no text under its heading")
    numbers = [_NUMBERED_HEAD.match(body[k].plain) for k in sorted(heads)]
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
    """Blocks -> Markdown. A section's only picture, when it stands at the start or the end
    of the section, is its image (the look shows it under the heading); any other picture
    stays where it was in the text, as ``![alt](picture:N)`` (draft_yaml names the file)."""
    runs = _ordered_runs(blocks)
    usable = [
        j
        for j, b in enumerate(runs)
        if b.kind == "image" and b.image < len(draft.images) and not draft.images[b.image].problem
    ]
    lead = None
    if section is not None and len(usable) == 1:
        j = usable[0]
        if all(x.kind == "image" for x in runs[:j]) or all(
            x.kind == "image" for x in runs[j + 1 :]
        ):
            lead = j
    parts: list[str] = []
    for j, b in enumerate(runs):
        if b.kind == "table":
            parts.append(_table_md(b))
            if not b.header:
                _note(
                    draft,
                    section,
                    "the table's first row was taken as its header (Word did not mark one); "
                    "check it",
                )
            continue
        if b.kind != "image":
            parts.append(_block_md(b))
            continue
        pic = draft.images[b.image] if b.image < len(draft.images) else None
        if pic is None:
            continue
        if pic.problem:
            _note(
                draft,
                section,
                f"picture {b.image + 1} was left out: it is {pic.problem}. In Word, save "
                "the picture as PNG or JPEG, put it back in the document and import again",
            )
            continue
        alt = (pic.alt or "").strip()
        if j == lead and section is not None:
            section.image = b.image
            if not alt:
                section.image_note = (
                    "replace the alt text with what the picture shows, for people who cannot see it"
                )
            continue
        parts.append(f"![{_escape_inline(_space(alt) or TODO_ALT)}](picture:{b.image})")
        if not alt:
            _note(
                draft,
                section,
                f"picture {b.image + 1} has no alt text: replace '{TODO_ALT}' with what it "
                "shows, for people who cannot see it",
            )
    return "\n\n".join(p for p in parts if p.strip())


def _note(draft: Draft, section: DraftSection | None, note: str) -> None:
    if section is not None:
        section.notes.append(note)
    else:
        draft.note("intro", note)


def _table_md(b: Block) -> str:
    """A GitHub-style table; every row as wide as the widest, '|' in a cell escaped."""
    width = max(len(r) for r in b.rows)

    def row(cells: list[str]) -> str:
        padded = [c.replace("|", "\\|").strip() for c in cells] + [""] * (width - len(cells))
        return "| " + " | ".join(c or " " for c in padded) + " |"

    return "\n".join([row(b.rows[0]), "|" + "|".join(["---"] * width) + "|", *map(row, b.rows[1:])])


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
