""".txt / .docx briefing -> draft YAML issue.

A comms officer gets a briefing as a Word document or as pasted text. This
package reads it into a ``Draft`` (title, date, author, greeting, intro,
sections, sign-off, pictures) and writes that as a readable YAML issue, with a
``# CHECK:`` comment beside everything it was unsure about.

Both readers produce the same list of blocks (paragraphs, headings, lists,
quotes, pictures); one structuring pass then finds the parts of an issue, so a
Word document and the same text pasted into a .txt file give the same draft.
Word documents go through mammoth (.docx -> semantic HTML), and that HTML is
turned into Markdown: headings, bold, italic, links, lists and pictures.

The YAML is written as text, not dumped, so it reads like the hand-written
issues in newsletters/: block scalars for Markdown, quotes only where needed.

One module per stage, in the order a briefing goes through them, then what they share:

    read.py        the file's bytes: .docx or text (or the wrong file), decoded
    text.py        plain text -> blocks
    word.py        Word (.docx, through mammoth's HTML) -> blocks
    structure.py   blocks -> Draft: title, author, subtitle, greeting, sign-off
    dates.py       the issue's date, found or guessed
    sections.py    the headings, and each section's Markdown and picture
    draft_yaml.py  Draft -> the YAML issue and its pictures on disk
    model.py       Block, Item, Picture, DraftSection, Draft; BriefingError
    shapes.py      text cleaned up; lines judged as title, heading, short line
    markdown.py    plain text -> Markdown shown as written; template syntax defused
"""

from __future__ import annotations

from .draft_yaml import default_output, image_names, render_yaml, slugify, write_draft
from .model import TODO_ALT, BriefingError, Draft, DraftSection
from .read import read_briefing

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
