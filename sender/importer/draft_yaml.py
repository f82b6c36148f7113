"""Draft -> YAML issue: written as text, not dumped, so it reads like the hand-written
issues in newsletters/ (block scalars for Markdown, quotes only where needed), with a
``# CHECK:`` comment beside everything the importer was unsure about; the pictures are
saved beside it.
"""

from __future__ import annotations

import json
import re
import textwrap
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from .model import TEMPLATE_NUMBERED, TEMPLATE_PLAIN, TODO_ALT, BriefingError, Draft

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
    out: list[str] = []
    for part in text.split("\n"):
        lines = textwrap.wrap(part, width=width, break_long_words=False, break_on_hyphens=False)
        for line in lines:
            lead = prefix if not out else " " * len(prefix)
            out.append(f"{indent}# {lead}{line}".rstrip())
    return out


def image_names(draft: Draft, out: Path) -> list[str]:
    """Where each picture goes, relative to the YAML file: images/<slug>-<n>.<ext>;
    "" for one left out (not a real picture: see Picture.problem)."""
    return [
        f"images/{out.stem}-{n}.{p.extension}" if not p.problem else ""
        for n, p in enumerate(draft.images, start=1)
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
    if draft.left_out:
        lines.append("#")
        lines += _comment(
            f"Left out: {len(draft.left_out)} thing(s) the email or the signature added "
            "around the briefing:"
        )
        for what in draft.left_out:
            lines += _comment(what, prefix="- ")
    lines.append("")

    def pictures(markdown: str) -> str:
        """``![alt](picture:N)`` -> the file the picture is saved as."""
        return re.sub(r"\]\(picture:(\d+)\)", lambda m: f"]({names[int(m.group(1))]})", markdown)

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
        lines += _block_scalar("intro", pictures(draft.intro), "")
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
            lines += _block_scalar("body", pictures(s.body), "    ")
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
    targets = [(out.parent / n, draft.images[k].data) for k, n in enumerate(names) if n]
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
