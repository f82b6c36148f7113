"""newsletters/*.yaml -> Issue: schema, line numbers, did-you-mean.

PyYAML's ``compose`` keeps every node's line and column, so each problem can
point at the exact place in the file. Scalars are read as the text the user
wrote and converted by our schema, never by YAML's own guessing (no
``no`` -> False, no ``1.10`` -> 1.1 surprises).

What an issue never needs is refused before it can do harm: anchors and
aliases (a few hundred bytes of them stand for millions of values), values or
Markdown nested hundreds of levels deep (each level is a Python call),
invisible control characters and half characters, and local "pictures" that
are not pictures.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import yaml

from . import markup, placeholders
from .audiences import EVERYONE
from .problems import Problems, ProblemsError, did_you_mean

Position = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True)
class Author:
    name: str
    role: str | None = None


@dataclass(frozen=True)
class Image:
    src: str
    alt: str
    href: str | None = None


@dataclass(frozen=True)
class Button:
    label: str
    url: str


@dataclass(frozen=True)
class Section:
    heading: str
    body: str = ""
    image: Image | None = None
    button: Button | None = None
    audiences: tuple[str, ...] = ()  # empty: everyone

    def is_for(self, audiences: frozenset[str]) -> bool:
        """Whether someone on these lists gets this section; an empty set means everyone."""
        return not audiences or not self.audiences or bool(audiences & set(self.audiences))


@dataclass(frozen=True)
class Issue:
    path: Path
    slug: str
    title: str
    date: dt.date
    sections: tuple[Section, ...]
    subject: str = ""
    preheader: str | None = None
    subtitle: str | None = None
    template: str = "blog"
    numbered: bool = False
    # "In this issue" at the top: None shows it when a version has CONTENTS_FROM sections.
    contents: bool | None = None
    author: Author | None = None
    greeting: str | None = None
    intro: str | None = None
    sign_off: str | None = None
    # Where each value was written ("sections[2].button.url" -> line, col), so
    # later checks (lint) can point at it too.
    positions: Mapping[str, Position] = field(default_factory=dict, compare=False)

    def texts(self) -> list[tuple[str, str]]:
        """Every piece of text that may hold placeholders, with its position key."""
        out: list[tuple[str, str]] = [("subject", self.subject)]
        for key in ("preheader", "greeting", "intro", "sign_off", "subtitle"):
            value = getattr(self, key)
            if value:
                out.append((key, value))
        for i, s in enumerate(self.sections):
            out.append((f"sections[{i}].heading", s.heading))
            out.append((f"sections[{i}].body", s.body))
            if s.button:
                out.append((f"sections[{i}].button.label", s.button.label))
                out.append((f"sections[{i}].button.url", s.button.url))
        return out


TOP_KEYS = (
    "title",
    "date",
    "subject",
    "preheader",
    "subtitle",
    "template",
    "numbered",
    "contents",
    "author",
    "greeting",
    "intro",
    "sections",
    "sign_off",
)
SECTION_KEYS = ("heading", "body", "image", "button", "audiences")
AUTHOR_KEYS = ("name", "role")
IMAGE_KEYS = ("src", "alt", "href")
BUTTON_KEYS = ("label", "url")
_SLUG_BAD = re.compile(r"[^a-z0-9-]+")
# Lists and sets inside each other; an issue needs five (sections, a section, its image, src).
MAX_DEPTH = 20
# Characters YAML refuses in a file, or that no email can carry in a value
# (tab and line breaks aside): C0 and C1 controls, DEL, and U+FFFE/U+FFFF.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
# ![alt](src) in Markdown: the pictures a text shows.
MARKDOWN_PICTURE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?")
_CONTROL_IN_VALUE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "backspace", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL"}
# An escape in a double-quoted value, and the control characters YAML's one-letter ones make.
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)
_NAMED_ESCAPES = {"0": 0, "a": 7, "b": 8, "v": 0x0B, "f": 0x0C, "r": 0x0D, "e": 0x1B, "N": 0x85}


def picture_format(head: bytes) -> str | None:
    """The file ending for a file starting with ``head``, when it is a picture every email
    program shows (png, jpg, gif, webp), by its bytes, whatever its name says; else None."""
    for magic, ending in (
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpg"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
    ):
        if head.startswith(magic):
            return ending
    return "webp" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else None


def picture_problem(head: bytes) -> str | None:
    """None when ``head`` (a file's first 512 bytes) starts a PNG, JPEG, GIF or WebP picture;
    else what the file is, for a message: "a web page (HTML), not a PNG, … picture"."""
    if picture_format(head):
        return None
    text = head.lstrip().lower()
    web_page = text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script"))
    word_drawing = head[40:44] == b" EMF" or head.startswith(b"\xd7\xcd\xc6\x9a")
    kinds = (
        (web_page, "a web page (HTML)"),
        (b"<svg" in text, "an SVG drawing"),
        (head.startswith(b"%PDF"), "a PDF"),
        (word_drawing, "a Word drawing (EMF or WMF)"),
        (head.startswith((b"II*\x00", b"MM\x00*")), "a TIFF picture"),
        (head.startswith(b"BM"), "a BMP picture"),
        (head[4:8] == b"ftyp", "an iPhone (HEIC) photo or a video"),
    )
    kind = next((what for found, what in kinds if found), None)
    return (f"{kind}, not" if kind else "not") + " a PNG, JPEG, GIF or WebP picture"


def slug_for(path: Path) -> str:
    """The file name without .yaml, safe for file names, URLs and Message-IDs."""
    slug = _SLUG_BAD.sub("-", path.stem.lower()).strip("-")
    return slug or "issue"


def load_issue(
    path: Path,
    *,
    templates: Collection[str] | None = None,
    lists: Collection[str] | None = None,
    display: str | None = None,
) -> Issue:
    """Read and validate one issue; raise ProblemsError with every problem found.

    ``templates`` and ``lists`` are the names that exist in the workspace; when
    given, unknown names are errors with a did-you-mean. ``display`` is how
    the file is named in messages (default: the path as given).
    """
    reader = _Reader(display or str(path), templates, lists)
    issue = reader.read(path)
    # In file order, as the reader will go through them, not in checking order.
    reader.problems.items.sort(key=lambda p: (p.line or 0, p.col or 0))
    reader.problems.raise_if_errors()
    assert issue is not None
    return issue


class _Refused(Exception):
    """Something no issue needs, refused while the YAML is read: where, what, and a hint."""

    def __init__(self, event: yaml.Event, message: str, hint: str) -> None:
        super().__init__(message)
        mark = event.start_mark
        self.line = mark.line + 1 if mark else None
        self.col = mark.column + 1 if mark else None
        self.message = message
        self.hint = hint


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing what no issue needs and what makes reading slow or
    deep: anchors and aliases (nine aliases of nine aliases of … are millions of values in a
    few hundred bytes, "billion laughs"), and values nested more than MAX_DEPTH deep (each
    level is one Python call, so 500 '[' were a RecursionError)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _Refused(
                event,
                "anchors and aliases (&name, *name) are not allowed in an issue",
                "write the value out in full wherever it is needed",
            )
        if self.depth >= MAX_DEPTH:
            raise _Refused(
                event,
                f"values are nested too deeply here: more than {MAX_DEPTH} lists or "
                "'key: value' sets inside each other",
                "an issue needs a few levels at most (sections, a section, its image); "
                "check the brackets [ ] { } and the '-' starting the lines here",
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Reader:
    def __init__(
        self, file: str, templates: Collection[str] | None, lists: Collection[str] | None
    ) -> None:
        self.file = file
        self.templates = templates
        self.lists = lists
        self.problems = Problems()
        self.positions: dict[str, Position] = {}
        self.folder = Path()  # the issue's folder: local pictures are relative to it

    # -- reporting ---------------------------------------------------------
    def error(self, node: yaml.Node | None, message: str, hint: str | None = None) -> None:
        line, col = _pos(node) if node is not None else (None, None)
        self.problems.error(self.file, line, col, message, hint)

    def warning(self, node: yaml.Node | None, message: str, hint: str | None = None) -> None:
        line, col = _pos(node) if node is not None else (None, None)
        self.problems.warning(self.file, line, col, message, hint)

    # -- top level -----------------------------------------------------------
    def read(self, path: Path) -> Issue | None:
        self.folder = path.parent
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.problems.error(
                self.file,
                None,
                None,
                "file not found",
                "check the name; issues live in newsletters/",
            )
            return None
        except OSError as exc:
            self.problems.error(self.file, None, None, f"cannot be read: {exc.strerror}")
            return None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            line_start = data.rfind(b"\n", 0, exc.start) + 1
            col = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
            self.problems.error(
                self.file,
                line,
                col,
                f"is not UTF-8 text (byte 0x{data[exc.start]:02x} here)",
                "save the file as UTF-8 in your editor (in Notepad: Save As, Encoding: UTF-8)",
            )
            return None
        if self.invisible_characters(text):
            return None
        try:
            root = yaml.compose(text, Loader=_Loader)
        except _Refused as exc:
            self.problems.error(self.file, exc.line, exc.col, exc.message, exc.hint)
            return None
        except yaml.MarkedYAMLError as exc:
            self._yaml_error(exc, text)
            return None
        except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
            self.problems.error(self.file, None, None, f"is not valid YAML: {exc}")
            return None
        if root is None:
            self.problems.error(
                self.file, 1, 1, "the file is empty", "start from a shipped issue in newsletters/"
            )
            return None
        if not isinstance(root, yaml.MappingNode):
            self.error(root, "an issue must be a set of 'key: value' lines (title:, date:, …)")
            return None
        self.escaped_characters(root)
        top = self.mapping(root, TOP_KEYS, "", required=("title", "date", "sections"))

        title = self.text(top.get("title"), "title", required=True)
        date = self.date(top.get("date"))
        # Without 'template:', the first look (blog, of those shipped).
        template = self.text(top.get("template"), "template") or min(self.templates or ["blog"])
        if self.templates is not None and template not in self.templates and "template" in top:
            self.error(
                top["template"],
                f"there is no template called '{template}'",
                did_you_mean(template, self.templates)
                or f"templates are: {', '.join(sorted(self.templates))}",
            )
        author = self.author(top.get("author"))
        sections = self.sections(top.get("sections"))
        issue = Issue(
            path=path,
            slug=slug_for(path),
            title=title or "",
            date=date or dt.date(1970, 1, 1),
            subject=self.text(top.get("subject"), "subject") or title or "",
            preheader=self.text(top.get("preheader"), "preheader"),
            subtitle=self.text(top.get("subtitle"), "subtitle"),
            template=template,
            numbered=self.boolean(top.get("numbered"), "numbered"),
            contents=self.boolean(top["contents"], "contents") if "contents" in top else None,
            author=author,
            greeting=self.text(top.get("greeting"), "greeting"),
            intro=self.text(top.get("intro"), "intro", markdown=True, at="intro"),
            sections=tuple(sections),
            sign_off=self.text(top.get("sign_off"), "sign_off", markdown=True, at="sign_off"),
            positions=self.positions,
        )
        return issue

    def invisible_characters(self, text: str) -> bool:
        """Control characters in the file, each line's first: YAML would refuse them by
        "position 91", and most editors do not show them. Whether there were any."""
        found = 0
        for line, line_text in enumerate(text.split("\n"), start=1):
            match = _INVISIBLE.search(line_text)
            if match is None:
                continue
            found += 1
            if found > 5:
                self.problems.error(
                    self.file, line, None, "more lines hold invisible control characters too"
                )
                break
            self.problems.error(
                self.file,
                line,
                match.start() + 1,
                f"an invisible control character ({_character(match.group())}) is here",
                "most editors do not show it; it comes with text copied from some programs: "
                "delete the characters around this place and type them again",
            )
        return found > 0

    def escaped_characters(self, root: yaml.Node) -> None:
        """Values whose escapes ("\\e", "\\x00", "\\udc80") make characters no email can
        carry. A character written as two \\u escapes, as JSON does, becomes one."""
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.MappingNode):
                stack += [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                stack += node.value
            elif isinstance(node, yaml.ScalarNode) and node.style == '"':
                self.escaped_value(node)

    def escaped_value(self, node: yaml.ScalarNode) -> None:
        value = str(node.value)
        if _SURROGATE.search(value):
            value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
            node.value = value
        for bad in (_SURROGATE.search(value), _CONTROL_IN_VALUE.search(value)):
            if bad is None:
                continue
            code = ord(bad.group())
            line, col = _escape_pos(node, code)
            if _SURROGATE.match(bad.group()):
                message = f"'\\u{code:x}' is half of a character, which no email can carry"
                hint = "type or paste the character itself instead of the escape"
            else:
                message = f"an invisible control character ({_character(bad.group())}) is here"
                hint = "remove the escape; emails cannot show control characters"
            self.problems.error(self.file, line, col, message, hint)

    def _yaml_error(self, exc: yaml.MarkedYAMLError, text: str) -> None:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or "is not valid YAML"
        hint = "check the indentation and that every 'key:' has a space after the colon"
        lines = text.splitlines()
        line_text = lines[mark.line] if mark and mark.line < len(lines) else ""
        leading = line_text[: len(line_text) - len(line_text.lstrip())]
        at_mark = line_text[mark.column : mark.column + 1] if mark else ""
        if "\t" in leading:
            problem = "a tab character is used for indentation"
            hint = "YAML needs spaces, not tabs: replace each tab with spaces"
        elif at_mark == "\t" or "'\\t'" in problem:
            problem = "a tab character here"
            hint = "YAML needs spaces, not tabs: replace the tab with a space"
        elif "mapping values are not allowed" in problem:
            problem = "a ':' here makes YAML read a new 'key: value'"
            hint = "put the whole text in quotes, or use 'body: |' and the text on the next lines"
        elif "could not find expected ':'" in problem:
            hint = "a line is missing 'key: value', or the indentation of this block is off"
        self.problems.error(self.file, line, col, f"not valid YAML: {problem}", hint)

    # -- shapes --------------------------------------------------------------
    def mapping(
        self,
        node: yaml.MappingNode,
        allowed: tuple[str, ...],
        where: str,
        required: tuple[str, ...] = (),
        label: str | None = None,
    ) -> dict[str, yaml.Node]:
        """The allowed keys' value nodes. ``where`` is the position key
        ("sections[1].image"), ``label`` how messages name the place ("section 2 image")."""
        label = where if label is None else label
        out: dict[str, yaml.Node] = {}
        suggested: set[str | None] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(
                    key_node,
                    f"a key must be a name such as 'title', not a {_kind(key_node)}",
                    "start the line with the key's name and a colon, e.g. 'title: …'",
                )
                continue
            key = str(key_node.value)
            path = f"{where}.{key}" if where else key
            if key in out:
                self.error(key_node, f"'{key}' is given twice", "keep one of them")
                continue
            if key not in allowed:
                close = did_you_mean(key, allowed)
                suggested.add(close)
                hint = close or f"allowed here: {', '.join(allowed)}"
                self.error(
                    key_node, f"unknown key '{key}'" + (f" in {label}" if label else ""), hint
                )
                continue
            out[key] = value_node
            self.positions[path] = _pos(value_node)
        for key in required:
            if key not in out and did_you_mean(key, [key]) not in suggested:
                # A misspelt key already said "did you mean '<key>'?": one mistake, one error.
                place = f"{label} " if label else ""
                self.error(node, f"{place}is missing '{key}'".strip(), f"add a line '{key}: …'")
        return out

    def text(
        self,
        node: yaml.Node | None,
        what: str,
        *,
        required: bool = False,
        key: str | None = None,
        markdown: bool = False,
        at: str | None = None,
    ) -> str | None:
        """``what`` names the value in messages ("section 2 heading"), ``key`` is the
        key the user writes (default: the last word of ``what``); ``markdown``: the
        value is Markdown."""
        if node is None:
            return None
        key = key or what.rsplit(" ", 1)[-1]
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{what} must be text, not a {_kind(node)}", _quote_hint(key))
            return None
        if node.tag == "tag:yaml.org,2002:null" or node.value.strip() == "":
            if required:
                self.error(node, f"{what} is empty", f"write the {what} after '{key}:'")
            return None
        value = str(node.value)
        self.check_placeholders(node, value, what)
        if markdown:
            self.check_nesting(node, value, what)
            if at is not None:
                # Where each picture named in the text is, for messages about it.
                for match in MARKDOWN_PICTURE.finditer(value):
                    self.positions[f"{at}!{match[2]}"] = _offset_pos(node, value, match.start())
        return value

    def check_nesting(self, node: yaml.ScalarNode, value: str, what: str) -> None:
        levels, line, cut = markup.nesting(value)
        if levels < markup.MAX_NESTING:
            return
        start = sum(len(text) + 1 for text in value.split("\n")[:line])
        start += len(value[start:]) - len(value[start:].lstrip())
        line, col = _offset_pos(node, value, start)
        self.problems.error(
            self.file,
            line,
            col,
            f"{what}: this text nests too deeply ({levels}{' or more' if cut else ''} levels): "
            "bold, italic, quotes or lists inside each other",
            f"an email shows at most {markup.MAX_NESTING - 1} levels: remove the extra "
            "*, _, > or - marks here",
        )

    def check_placeholders(self, node: yaml.ScalarNode, value: str, what: str) -> None:
        _, bad = placeholders.scan(value)
        for problem in bad:
            line, col = _offset_pos(node, value, problem.offset)
            self.problems.error(self.file, line, col, f"{what}: {problem.message}", problem.hint)

    def date(self, node: yaml.Node | None) -> dt.date | None:
        if node is None:
            return None
        raw = node.value if isinstance(node, yaml.ScalarNode) else None
        if raw is not None and not str(raw).strip():
            self.error(node, "date is empty", "write it as YYYY-MM-DD, e.g. 2025-02-13")
            return None
        try:
            if raw is None:
                raise ValueError
            return dt.date.fromisoformat(str(raw).strip())
        except ValueError:
            self.error(node, *_date_problem(str(raw).strip() if raw is not None else None))
            return None

    def boolean(self, node: yaml.Node | None, what: str) -> bool:
        if node is None:
            return False
        raw = str(node.value).strip().lower() if isinstance(node, yaml.ScalarNode) else ""
        if raw in ("true", "yes", "on"):
            return True
        if raw in ("false", "no", "off"):
            return False
        self.error(node, f"{what} must be true or false")
        return False

    def author(self, node: yaml.Node | None) -> Author | None:
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode):  # "author: Steve Kay" is a fine shorthand
            name = self.text(node, "author")
            return Author(name) if name else None
        if not isinstance(node, yaml.MappingNode):
            self.error(node, "author must be {name: …, role: …}")
            return None
        values = self.mapping(node, AUTHOR_KEYS, "author", required=("name",), label="author")
        name = self.text(values.get("name"), "author name", required=True)
        role = self.text(values.get("role"), "author role")
        return Author(name, role) if name else None

    def sections(self, node: yaml.Node | None) -> list[Section]:
        if node is None:
            return []
        empty = isinstance(node, yaml.ScalarNode) and not str(node.value).strip()
        if not isinstance(node, yaml.SequenceNode) and not empty:
            self.error(
                node,
                f"sections must be a list, not a {_kind(node)}",
                "start each section with '- heading: …' on its own line",
            )
            return []
        if empty or not node.value:
            self.error(node, "sections is empty", "add at least one '- heading: …' with a body")
            return []
        out = []
        for i, item in enumerate(node.value):
            where = f"sections[{i}]"
            label = f"section {i + 1}"
            if not isinstance(item, yaml.MappingNode):
                self.error(
                    item, f"{label} must be 'heading:', 'body:' and so on, not a {_kind(item)}"
                )
                continue
            values = self.mapping(item, SECTION_KEYS, where, required=("heading",), label=label)
            heading = self.text(values.get("heading"), f"{label} heading", required=True)
            body = (
                self.text(values.get("body"), f"{label} body", markdown=True, at=f"{where}.body")
                or ""
            )
            image = self.image(values.get("image"), where, label)
            button = self.button(values.get("button"), where, label)
            audiences = self.audiences(values.get("audiences"), label)
            out.append(Section(heading or "", body, image, button, audiences))
        return out

    def image(self, node: yaml.Node | None, where: str, label: str) -> Image | None:
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{label} image must be {{src: …, alt: …}}")
            return None
        values = self.mapping(
            node, IMAGE_KEYS, f"{where}.image", required=("src",), label=f"{label} image"
        )
        src = self.text(values.get("src"), f"{label} image src", required=True)
        alt_node = values.get("alt")
        alt = self.text(alt_node, f"{label} image alt") if alt_node is not None else None
        if not alt:
            self.error(
                alt_node or node,
                f"{label} image has no alt text",
                "add alt: describing the picture for people who cannot see it",
            )
        parts = _split(src) if src else None
        if src and (parts is None or parts.scheme not in ("", "https", "http")):
            self.error(values["src"], f"{label} image src '{src}' is not a web address or a file")
        elif src and parts and not parts.scheme:
            problem = _local_picture_problem(self.folder / src)
            if problem:
                self.error(
                    values["src"],
                    f"{label} image '{src}' is {problem}",
                    "only real pictures are sent and published: save it as PNG or JPEG "
                    "and point 'src:' at that file",
                )
        href = self.url(values.get("href"), f"{label} image link", key="href")
        return Image(src, alt or "", href) if src else None

    def button(self, node: yaml.Node | None, where: str, label: str) -> Button | None:
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{label} button must be {{label: …, url: …}}")
            return None
        values = self.mapping(
            node, BUTTON_KEYS, f"{where}.button", required=("label", "url"), label=f"{label} button"
        )
        text = self.text(values.get("label"), f"{label} button label", required=True)
        url = self.url(values.get("url"), f"{label} button url")
        return Button(text, url) if text and url else None

    def url(self, node: yaml.Node | None, what: str, key: str | None = None) -> str | None:
        value = self.text(node, what, key=key)
        if value is None:
            return None
        plain = placeholders.PLACEHOLDER.sub("x", value)
        parts = _split(plain)
        ok = parts is not None and (
            (parts.scheme in ("https", "http") and "." in parts.netloc)
            or (parts.scheme == "mailto" and "@" in parts.path)
        )
        if not ok or any(c.isspace() for c in plain):
            self.error(
                node,
                f"{what} '{value}' is not a web address",
                "write the full address, starting with https:// (or mailto: for email)",
            )
            return None
        return value

    def audiences(self, node: yaml.Node | None, label: str) -> tuple[str, ...]:
        if node is None:
            return ()
        items = [node] if isinstance(node, yaml.ScalarNode) else node.value
        if not isinstance(node, yaml.ScalarNode | yaml.SequenceNode):
            self.error(node, f"{label} audiences must be a list like [headteachers, managers]")
            return ()
        names = []
        for item in items:
            if not isinstance(item, yaml.ScalarNode) or not str(item.value).strip():
                self.error(item, f"{label} audiences must be list names")
                continue
            name = str(item.value).strip()
            if name == EVERYONE:
                self.error(
                    item,
                    f"{label}: '{EVERYONE}' is not needed in audiences",
                    "leave 'audiences' out and the section goes to everyone",
                )
                continue
            if self.lists is not None and name not in self.lists:
                self.error(
                    item,
                    f"{label}: there is no list called '{name}'",
                    did_you_mean(name, self.lists)
                    or (
                        f"lists are the CSV files in recipients/: {', '.join(sorted(self.lists))}"
                        if self.lists
                        else "add recipients/<name>.csv first"
                    ),
                )
            names.append(name)
        return tuple(names)


_YMD = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def _date_problem(raw: str | None) -> tuple[str, str]:
    """What is wrong with a date that did not read, and how to write it."""
    how = "write it as YYYY-MM-DD, e.g. 2025-02-13"
    if not raw:
        return "date must be a date", how
    ymd = _YMD.fullmatch(raw)
    if ymd:
        year, month, day = map(int, ymd.groups())
        if not 1 <= month <= 12:
            return (
                f"date '{raw}': there is no month {month}",
                "write it as YYYY-MM-DD (year, month, day), e.g. 2025-02-13",
            )
        days = calendar.monthrange(year, month)[1]
        name = calendar.month_name[month]
        if name == "February" and day == 29 and days == 28:
            return (
                f"date '{raw}' does not exist: {year} is not a leap year, so February has 28 days",
                "check the day",
            )
        if not 1 <= day <= days:
            return f"date '{raw}' does not exist: {name} has {days} days", "check the day"
        return f"date '{raw}' is not a date we can read", f"write it as {year}-{month:02}-{day:02}"
    dmy = _DMY.fullmatch(raw)
    if dmy:
        day, month, year = map(int, dmy.groups())
        if 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]:
            return (
                f"date '{raw}' is written day first",
                f"write it year first, as {year}-{month:02}-{day:02} "
                f"(if you mean {day} {calendar.month_name[month]} {year})",
            )
    return f"date '{raw}' is not a date we can read", how


def _split(address: str) -> SplitResult | None:
    """The parts of a web address; None when there are none to read ("https://[::1")."""
    try:
        return urlsplit(address)
    except ValueError:
        return None


def _local_picture_problem(path: Path) -> str | None:
    """What is wrong with a picture file the issue names; None if it is fine or missing."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as f:
            head = f.read(512)
    except (OSError, ValueError):
        return None
    return picture_problem(head)


def _character(char: str) -> str:
    """'U+001B ESC', for messages about characters no one can see."""
    name = _CONTROL_NAMES.get(ord(char))
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def _escape_pos(node: yaml.ScalarNode, code: int) -> Position:
    """Where in a double-quoted value the escape of character ``code`` is written
    ("\\e", "\\x1b", "\\u001b", …); where the value starts when it is not found."""
    mark = node.start_mark
    source = (mark.buffer or "")[mark.index : node.end_mark.index]
    for found in _ESCAPE.finditer(source):
        escape = found.group(1)
        if code == (int(escape[1:], 16) if len(escape) > 1 else _NAMED_ESCAPES.get(escape)):
            break
    else:
        return _pos(node)
    before = source[: found.start()]
    if "\n" not in before:
        return mark.line + 1, mark.column + found.start() + 1
    return mark.line + before.count("\n") + 1, found.start() - before.rfind("\n")


def _pos(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _offset_pos(node: yaml.ScalarNode, value: str, offset: int) -> Position:
    """Line and column of ``value[offset]`` in the file, for every scalar style.

    Folding ('>' blocks, plain and quoted text over several lines), indentation,
    quotes and escapes change only whitespace and quoting between the file and
    the value; every other character is in the file in the same order. So they
    are matched one by one, from where the text starts, up to ``value[offset]``.
    """
    mark = node.start_mark
    buffer = mark.buffer
    if not buffer or not 0 <= offset < len(value):
        return _pos(node)
    i, end = mark.index, node.end_mark.index
    if node.style in ("|", ">"):
        i = buffer.find("\n", i, end) + 1  # the text starts on the line after '|'
        if i == 0:
            return _pos(node)
    elif node.style in ("'", '"'):
        i += 1
    found = -1
    for ch in value[: offset + 1]:
        if ch.isspace():
            continue
        found = buffer.find(ch, i, end)
        if found < 0:  # an escape such as "\x41": say where the text starts
            return _pos(node)
        i = found + 1
    if found < 0:
        return _pos(node)
    line_start = buffer.rfind("\n", 0, found) + 1
    return buffer.count("\n", 0, found) + 1, found - line_start + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "set of 'key: value' lines"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "single value"


def _quote_hint(what: str) -> str:
    return f"write the {what} on the same line after '{what}:', in quotes if it holds ':' or '#'"


__all__ = [
    "Author",
    "Button",
    "Image",
    "Issue",
    "ProblemsError",
    "Section",
    "load_issue",
    "picture_format",
    "picture_problem",
    "slug_for",
]
