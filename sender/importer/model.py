"""What a briefing is read into (blocks, pictures, the Draft of an issue), and BriefingError."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from ..issue import picture_format, picture_problem

TODO_ALT = "TODO: describe this picture"


TEMPLATE_NUMBERED = "briefing"


TEMPLATE_PLAIN = "blog"


class BriefingError(Exception):
    """The briefing cannot be imported. The message names the file and says why."""


@dataclass
class Item:
    """One list item: Markdown text and any list nested under it."""

    md: str
    sub: Block | None = None


@dataclass
class Block:
    kind: Literal["para", "heading", "list", "quote", "image", "table"]
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
    rows: list[list[str]] = field(default_factory=list)  # a table: Markdown of each cell
    header: bool = True  # a table: its first row was marked as the header


@dataclass
class Picture:
    data: bytes
    content_type: str  # what the Word document says it is; its bytes are what count
    alt: str | None = None  # the alt text the Word document gives, if any

    @property
    def extension(self) -> str:
        """png, jpg, gif or webp, by its bytes; '' when it is not a picture emails can show."""
        return picture_format(self.data[:16]) or ""

    @property
    def problem(self) -> str | None:
        """Why it is left out of the draft ("a web page (HTML), not a PNG, … picture"), by
        its bytes: only pictures every email program shows are saved, and nothing that a
        browser would run once the archive publishes it; None when it is such a picture."""
        return picture_problem(self.data[:512])


@dataclass
class Envelope:
    """What an email adds around a briefing: the facts its headers give (used when the
    body does not say otherwise) and everything left out of the draft, to list."""

    subject: str | None = None
    date: dt.datetime | None = None
    sender: str | None = None  # the display name of From:
    left_out: list[str] = field(default_factory=list)  # "what: text", one per thing
    notes: list[str] = field(default_factory=list)  # CHECK notes about the whole file

    def leave_out(self, what: str, text: str) -> None:
        shown = " / ".join(s for s in (ln.strip() for ln in text.split("\n")) if s)
        if len(shown) > 160:
            shown = shown[:157].rstrip() + "…"
        self.left_out.append(f"{what}: {shown}" if shown else what)


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
    left_out: list[str] = field(default_factory=list)  # what an email added, left out
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
