"""Plain text -> Markdown that shows exactly that text: escaping, addresses made links,
and template syntax ('{{', '{%') broken up so it is shown as written.
"""

from __future__ import annotations

import re

from .model import Draft

_URL = re.compile(
    # Only characters a link keeps as they are (a dash or '[' ends it): the text part
    # then shows the address exactly as written.
    r"\b(?:https?://|mailto:)(?:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+"
    r"|(?<![\w.+-])[A-Za-z0-9.+_-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\b"
)


_TRAILING = ".,;:!?)]}'’\""


# Outlook's plain text writes a link as its words then the address: "the form<https://…>".
OUTLOOK_LINK = re.compile(r"(?<=\S)<((?:https?://|mailto:)[^<>\s]+)>")


# The words of such a link: up to five before the address, back to punctuation.
_LINK_WORDS = re.compile(
    r"(?:^|(?<=[\s(\"“‘]))([^\s.,;:!?()\"“”‘]+(?:[ \t]+[^\s.,;:!?()\"“”‘]+){0,4})$"
)


def _md_text(text: str) -> str:
    """Plain text as Markdown that shows exactly that text; web and email addresses as
    links, and Outlook's 'words<address>' a Markdown link."""
    out: list[str] = []
    pos = 0
    for m in OUTLOOK_LINK.finditer(text):
        before = text[pos : m.start()]
        url = m.group(1)
        shown = url.removeprefix("mailto:")
        if before.endswith((url, shown)):  # "jane@x.org<mailto:jane@x.org>": said once
            out.append(_md_plain(before[: len(before) - len(shown)] + shown))
        else:
            words = _LINK_WORDS.search(before)
            label = words.group(1) if words else ""
            out.append(_md_plain(before[: len(before) - len(label)]))
            safe = url.replace("(", "%28").replace(")", "%29").replace("{", "%7B")
            safe = safe.replace("}", "%7D")
            out.append(f"[{_escape_inline(label)}]({safe})" if label else f"<{safe}>")
        pos = m.end()
    out.append(_md_plain(text[pos:]))
    return "".join(out)


# "*new*" written in a briefing is the writer's emphasis (a habit from plain-text email),
# kept as Markdown emphasis rather than shown as '\\*new\\*'; a lone '*' stays a '*'.
EMPHASIS = re.compile(r"(?<![\w*\\])\*(?=[^\s*])([^*\n]{1,80}?)(?<=[^\s*\\])\*(?![\w*])")


def _escape_prose(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in EMPHASIS.finditer(text):
        out += [_escape_inline(text[pos : m.start()]), "*", _escape_inline(m.group(1)), "*"]
        pos = m.end()
    out.append(_escape_inline(text[pos:]))
    return "".join(out)


def _md_plain(text: str) -> str:
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
        out.append(_escape_prose(text[pos : m.start()]))
        out.append("<" + url.replace("{", "%7B").replace("}", "%7D") + ">")
        pos = m.start() + len(url)
    out.append(_escape_prose(text[pos:]))
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
