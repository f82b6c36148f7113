"""Stage-2 personalisation placeholders: ``{{ field }}`` and ``{{ field | default("text") }}``.

One grammar shared by the issue loader (which rejects anything else), the
renderer (which carries placeholders through Markdown, MJML and the inliner as
opaque tokens) and the message stage (which fills them per recipient, escaped
for where each one sits: HTML text, a URL attribute, or plain text).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

Context = Literal["html", "url", "text"]

_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''
# The canonical form, as written by people and as left in a Variant.
PLACEHOLDER = re.compile(
    r"\{\{\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\|\s*default\s*\(\s*(?P<default>" + _STRING + r")\s*\)\s*)?\}\}"
)
# Anything that looks like template syntax, to find what the grammar rejects.
_OPENERS = re.compile(r"\{\{|\{%|\{#")

# Tokens survive Markdown, Jinja autoescape, MJML, CSS inlining, URL
# normalisation and text wrapping because they are plain letters and digits.
_TOKEN = re.compile(r"zqph(\d{4})qz")


@dataclass(frozen=True)
class Placeholder:
    field: str
    default: str | None

    def canonical(self) -> str:
        if self.default is None:
            return "{{ " + self.field + " }}"
        return (
            "{{ "
            + self.field
            + " | default("
            + json.dumps(self.default, ensure_ascii=False)
            + ") }}"
        )

    def value(self, fields: Mapping[str, str]) -> str | None:
        """The recipient's value, else the default, else None (a missing field)."""
        got = fields.get(self.field)
        if got:
            return got
        return self.default

    def shown_without_data(self) -> str:
        """What a preview or web copy shows with no recipient: the default or [field]."""
        return self.default if self.default is not None else f"[{self.field}]"


def _placeholder(match: re.Match[str]) -> Placeholder:
    # List columns are lower-cased ("First Name" -> first_name), so field
    # names are too: {{ First_Name }} finds the first_name column.
    default = match.group("default")
    return Placeholder(match.group("field").lower(), _unquote(default) if default else None)


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


@dataclass(frozen=True)
class SyntaxProblem:
    offset: int
    message: str
    hint: str


def scan(text: str) -> tuple[list[tuple[int, Placeholder]], list[SyntaxProblem]]:
    """Every placeholder in ``text`` with its offset, and every malformed one."""
    found: list[tuple[int, Placeholder]] = []
    problems: list[SyntaxProblem] = []
    pos = 0
    while True:
        opener = _OPENERS.search(text, pos)
        if opener is None:
            break
        start = opener.start()
        kind = opener.group()
        if kind != "{{":
            close = "%}" if kind == "{%" else "#}"
            problems.append(
                SyntaxProblem(
                    start,
                    f"'{kind} … {close}' is template logic, which is not allowed in an issue",
                    'only {{ field }} or {{ field | default("text") }} may be used; '
                    "to show a section to some people only, give it 'audiences'",
                )
            )
            end = text.find(close, start)
            pos = start + 2 if end < 0 else end + 2
            continue
        match = PLACEHOLDER.match(text, start)
        if match:
            found.append((start, _placeholder(match)))
            pos = match.end()
            continue
        end = text.find("}}", start)
        if end < 0:
            problems.append(
                SyntaxProblem(
                    start,
                    "placeholder '{{' is never closed with '}}'",
                    "write it as {{ first_name }} with both pairs of braces",
                )
            )
            break
        problems.append(
            SyntaxProblem(
                start,
                f"'{text[start : end + 2]}' is not a placeholder we understand",
                'write {{ field }} or {{ field | default("text") }}; '
                "field names use letters, digits and _",
            )
        )
        pos = end + 2
    return found, problems


class Tokens:
    """Swaps placeholders for inert tokens before rendering, and back after."""

    def __init__(self) -> None:
        self.placeholders: list[Placeholder] = []

    def protect(self, text: str) -> str:
        def swap(match: re.Match[str]) -> str:
            ph = _placeholder(match)
            self.placeholders.append(ph)
            return f"zqph{len(self.placeholders) - 1:04d}qz"

        return PLACEHOLDER.sub(swap, text)

    def restore(self, rendered: str) -> str:
        return _TOKEN.sub(lambda m: self.placeholders[int(m.group(1))].canonical(), rendered)


def find(text: str) -> Iterator[tuple[re.Match[str], Placeholder]]:
    for match in PLACEHOLDER.finditer(text):
        yield match, _placeholder(match)


@dataclass(frozen=True)
class Slot:
    """A placeholder in a prepared template, with how its value must be escaped."""

    placeholder: Placeholder
    context: Context


Segments = list[str | Slot]

_URL_ATTRS = {"href", "src", "action", "background", "cite", "poster"}
_ATTR_BEFORE = re.compile(r"([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*[\"']?[^\"'<>]*$")


def _html_context(html_text: str, offset: int) -> Context:
    last_open = html_text.rfind("<", 0, offset)
    last_close = html_text.rfind(">", 0, offset)
    if last_open <= last_close:
        return "html"
    attr = _ATTR_BEFORE.search(html_text, last_open, offset)
    if attr and attr.group(1).lower() in _URL_ATTRS:
        return "url"
    return "html"


def split(text: str, kind: Literal["html", "text"]) -> Segments:
    """Cut a Variant's HTML or text into literals and slots, once per variant."""
    segments: Segments = []
    pos = 0
    for match, ph in find(text):
        segments.append(text[pos : match.start()])
        context: Context = _html_context(text, match.start()) if kind == "html" else "text"
        segments.append(Slot(ph, context))
        pos = match.end()
    segments.append(text[pos:])
    return segments


def escape(value: str, context: Context) -> str:
    if context == "html":
        return html.escape(value, quote=True)
    if context == "url":
        # Everything but unreserved characters: a value can never end a URL
        # attribute, add a query parameter or turn into javascript:.
        return quote(value, safe="")
    return value


def fill(segments: Segments, fields: Mapping[str, str] | None) -> str:
    """Join segments with each slot's value (recipient's, else default, else [field])."""
    out: list[str] = []
    for seg in segments:
        if isinstance(seg, str):
            out.append(seg)
            continue
        value = seg.placeholder.value(fields) if fields is not None else None
        if value is None:
            value = seg.placeholder.shown_without_data()
        out.append(escape(value, seg.context))
    return "".join(out)
