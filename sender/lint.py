"""Check rules over an Issue and its Variants: things that are not wrong, but
that a careful comms officer wants to know before sending."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import markup
from .config import Config
from .issue import Issue
from .pictures import MAX_BYTES, MAX_WIDTH, WARN_BYTES, uses
from .placeholders import Placeholder, fill, find, split
from .problems import Problem, ProblemsError, Severity, did_you_mean
from .render import audience_sets
from .variant import Variant
from .workspace import Workspace

GMAIL_CLIP_BYTES = 102 * 1024
SUBJECT_MAX = 78
_VAGUE = re.compile(r"^\s*(click here|here|click|read more|more|this link|link)\s*[.!]?\s*$", re.I)
_MD_LINK = re.compile(r"\[([^\]]*)\]\(\s*([^)\s]*)")
_HTTP = re.compile(r"http://[^\s)>\]]+")


def lint(
    issue: Issue,
    variants: Sequence[Variant],
    *,
    file: str,
    list_sizes: Mapping[str, int] | None = None,
    columns: Mapping[str, set[str]] | None = None,
) -> list[Problem]:
    """Warnings for one issue. ``list_sizes``: valid recipients per list;
    ``columns``: each list's column names."""
    out: list[Problem] = []

    def warn(
        key: str | None,
        message: str,
        hint: str | None = None,
        offset_text: str = "",
        offset: int = 0,
    ) -> None:
        out.append(_at(issue, file, key, message, hint, offset_text, offset))

    for v in variants:
        size = len(fill(split(v.html, "html"), None).encode("utf-8"))
        if size > GMAIL_CLIP_BYTES:
            warn(
                None,
                f"the {v.key} version's HTML is {size / 1024:.0f} KB; Gmail cuts off messages "
                f"over 102 KB behind a 'View entire message' link",
                "shorten it, or split it into two issues",
            )
    if not issue.preheader:
        warn(
            None,
            "no preheader: inboxes will show the first words of the email instead",
            "add 'preheader: …', a one-line summary shown next to the subject",
        )
    if len(issue.subject) > SUBJECT_MAX:
        warn(
            "subject" if "subject" in issue.positions else "title",
            f"the subject is {len(issue.subject)} characters; over {SUBJECT_MAX} it is cut "
            "short in most inboxes",
            "shorten 'subject:'",
        )
    for key, text in issue.texts():
        for match in _MD_LINK.finditer(text):
            label = match.group(1)
            if _VAGUE.match(label):
                warn(
                    key,
                    f"the link text '{label}' says nothing about where it goes",
                    "screen-reader users hear link texts alone: name the destination instead",
                    text,
                    match.start(),
                )
        for match in _HTTP.finditer(text):
            warn(
                key,
                f"'{match.group()}' uses http:, which is not encrypted",
                "use https:// if the site supports it",
                text,
                match.start(),
            )
        if key.endswith("button.label") and _VAGUE.match(text):
            warn(
                key,
                f"the button text '{text}' says nothing about where it goes",
                "name the action, e.g. 'Book a place'",
            )
        if key.endswith("button.url") and text.startswith("http://"):
            warn(key, f"'{text}' uses http:, which is not encrypted", "use https://")
    if list_sizes is not None:
        for i, s in enumerate(issue.sections):
            reach = [a for a in s.audiences if list_sizes.get(a, 0) > 0]
            if s.audiences and not reach:
                warn(
                    f"sections[{i}].audiences",
                    f"section '{s.heading}' is for {', '.join(s.audiences)}, "
                    "but no list of those names has anyone on it",
                    "add people to the list, or change the section's audiences",
                )
    out += heading_problems(issue, file=file)
    if columns is not None:
        out += placeholder_problems(issue, columns, file=file)
    return out


def _at(
    issue: Issue,
    file: str,
    key: str | None,
    message: str,
    hint: str | None = None,
    offset_text: str = "",
    offset: int = 0,
    severity: Severity = "warning",
) -> Problem:
    """A problem at the value ``key`` of the issue; at ``offset`` in ``offset_text`` (its
    text), the line inside a multi-line block."""
    line, col = issue.positions.get(key, (None, None)) if key else (None, None)
    if line is not None and offset_text:
        # Point inside a multi-line block: the text starts on the next line.
        before = offset_text[:offset]
        line += before.count("\n") + (1 if "\n" in offset_text else 0)
        col = None
    return Problem(file, line, col, message, hint, severity)


def _marks(level: int) -> str:
    return "#" * level


def heading_problems(issue: Issue, *, file: str) -> list[Problem]:
    """Headings written in a text that skip a level ('#' then '###'), at their line: the
    email shows them without the gap, but the writer may have meant another structure."""
    out: list[Problem] = []
    for key, text in issue.texts():
        if not (key in ("intro", "sign_off") or key.endswith(".body")):
            continue
        found = markup.headings(text)
        if not found:
            continue
        lines = text.split("\n")
        biggest = min(level for level, _, _ in found)
        before: tuple[int, int, str] | None = None
        for level, line, words in found:
            offset = sum(len(x) + 1 for x in lines[:line])
            if before is None and level > biggest:
                out.append(
                    _at(
                        issue,
                        file,
                        key,
                        f"the heading '{_marks(level)} {words}' is smaller than one later in "
                        f"this text ({_marks(biggest)}): a heading level is skipped",
                        f"start with the biggest: write '{_marks(biggest)} {words}'",
                        text,
                        offset,
                    )
                )
            elif before is not None and level > before[0] + 1:
                out.append(
                    _at(
                        issue,
                        file,
                        key,
                        f"the heading '{_marks(level)} {words}' skips a level after "
                        f"'{_marks(before[0])} {before[2]}'",
                        f"write '{_marks(before[0] + 1)} {words}' (one # more than the "
                        "heading it belongs under)",
                        text,
                        offset,
                    )
                )
            before = (level, line, words)
    return out


# Every person has these (name may be empty in a row: placeholders still need a default).
_ALWAYS = frozenset({"email", "name"})


def _section(key: str) -> int | None:
    """The index of the section a text's key is in ('sections[2].body': 2), or None."""
    if key.startswith("sections["):
        return int(key[len("sections[") : key.index("]")])
    return None


def _text_name(key: str) -> str:
    """How a message names the text at ``key``: 'section 3', 'the greeting'."""
    n = _section(key)
    return f"section {n + 1}" if n is not None else "the " + key.replace("_", "-")


def _placeholder_finding(
    what: str, ph: Placeholder, reach: list[str], lacking: list[str], there: set[str], key: str
) -> tuple[str, str, Severity] | None:
    """What is wrong with one placeholder of a text going to the lists ``reach`` (those of
    them ``lacking`` its column; ``there``: their columns): message, hint, severity."""
    field = ph.field
    close = did_you_mean(field, sorted(there))
    columns = close or f"their columns are: {', '.join(sorted(there))}"
    default = f'{{{{ {field} | default("…") }}}}'
    if field not in there and ph.default is not None:
        return (
            f"{what}: '{field}' is not a column of the lists it goes to ({', '.join(reach)}), "
            f"so everyone will see '{ph.default}'",
            columns,
            "warning",
        )
    if field not in there:
        return (
            f"{what}: there is no '{field}' column in the lists it goes to ({', '.join(reach)})",
            columns,
            "error",
        )
    if ph.default is not None:
        return None
    if lacking:
        having = [n for n in reach if n not in lacking]
        one = len(lacking) == 1
        hint = f"give it a default, as {default}"
        if _section(key) is not None:
            hint += (
                f", or send {what} to {', '.join(having)} only (audiences: [{', '.join(having)}])"
            )
        return (
            f"{what}: {{{{ {field} }}}} has no default, and {', '.join(lacking)}, which it "
            f"goes to, {'has' if one else 'have'} no '{field}' column",
            hint,
            "error",
        )
    return (
        f"{what}: {{{{ {field} }}}} has no default, so build/ and the archive's web copy "
        f"(for no one in particular) would show [{field}]",
        f"give it a default, as {default}",
        "error",
    )


def placeholder_problems(
    issue: Issue, columns: Mapping[str, set[str]], *, file: str
) -> list[Problem]:
    """Placeholders no list can fill, or some list a text goes to cannot, with did-you-mean
    against the columns of the lists that text goes to (``columns``: each list's columns;
    at send time, only the lists of the send); and any without a default, which build/ and
    the public archive (for no one in particular) could only show as [field]."""
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for key, text in issue.texts():
        reach = sorted(columns)
        section = _section(key)
        if section is not None:
            wanted = issue.sections[section].audiences
            reach = [name for name in reach if not wanted or name in wanted]
        if not reach:
            continue
        there = set(_ALWAYS).union(*(columns[n] for n in reach))
        what = _text_name(key)
        for match, ph in find(text):
            if (ph.field, key) in seen:
                continue
            seen.add((ph.field, key))
            lacking = [n for n in reach if ph.field not in columns[n] | _ALWAYS]
            found = _placeholder_finding(what, ph, reach, lacking, there, key)
            if found is not None:
                out.append(_at(issue, file, key, *found[:2], text, match.start(), found[2]))
    return out


def picture_problems(
    issue: Issue, variants: Sequence[Variant], config: Config, *, file: str
) -> list[Problem]:
    """What a phone or a mail program will make of the issue's pictures."""
    out: list[Problem] = []

    def at(key: str, message: str, hint: str, severity: Severity = "warning") -> None:
        line, col = issue.positions.get(key, (None, None))
        out.append(Problem(file, line, col, message, hint, severity))

    if config.images_mode == "hosted" and not config.web_url and any(v.pictures for v in variants):
        at(
            "title",
            "[images] mode is hosted, but newsletter.toml has no [newsletter] web_url to "
            "publish the pictures at",
            'set web_url to where the archive folder is published, or use mode = "embed"',
            "error",
        )
    for use in uses(issue, config.logo):
        if use.src.startswith("http://"):
            at(
                use.key,
                f"the picture {use.src} is an http: address: many mail programs block "
                "unencrypted pictures",
                "use https://, or save the picture in the newsletter folder",
            )
    for v in variants:
        wide = [pic for pic in v.pictures if pic.mime == "image/gif" and pic.width > MAX_WIDTH]
        for pic in wide:
            at(
                _key_of(issue, config, pic.src),
                f"the picture {pic.src} is an animated GIF {pic.width} px wide: it is sent as it "
                f"is, as animations cannot be made smaller",
                f"save it at most {MAX_WIDTH} px wide",
            )
    # The heaviest version speaks for all: one finding, not one per version.
    heaviest = max(variants, key=lambda v: sum(len(p.data) for p in v.pictures), default=None)
    total = sum(len(p.data) for p in heaviest.pictures) if heaviest else 0
    if heaviest is not None and total > WARN_BYTES:
        biggest = max(heaviest.pictures, key=lambda pic: len(pic.data))
        size = f"{total / 1024 / 1024:.1f} MB"
        where = "in it" if heaviest.embedded else "to download when it is opened"
        same = len({sum(len(p.data) for p in v.pictures) for v in variants}) == 1
        who = "each email" if same else f"the {heaviest.key} version"
        message = (
            f"{who} has {size} of pictures {where}; the biggest is "
            f"{biggest.src} ({len(biggest.data) / 1024:.0f} KB)"
        )
        key = _key_of(issue, config, biggest.src)
        if total > MAX_BYTES:
            at(key, message + ": too big to send", _LIGHTER, "error")
        else:
            at(key, message + ": slow on a phone", _LIGHTER)
    # Every version showing the same big picture says so once.
    return list({(x.line, x.col, x.message): x for x in out}.values())


_LIGHTER = "use fewer pictures, or crop them to what matters"


def _key_of(issue: Issue, config: Config, src: str) -> str:
    return next((u.key for u in uses(issue, config.logo) if u.src == src), "title")


def unsubscribe_problems(config: Config, lists: Sequence[str], *, file: str) -> list[Problem]:
    """Gmail, Yahoo and Outlook.com want a one-click (https) unsubscribe from bulk senders."""
    leavable = [n for n in lists if n not in config.mandatory_lists]
    out: list[Problem] = []
    fixed = sorted(set(lists) & config.mandatory_lists)
    if fixed:
        out.append(
            Problem(
                file,
                None,
                None,
                f"{', '.join(fixed)}: marked as a list people cannot leave "
                "([lists.NAME] unsubscribe = false), so its emails carry no unsubscribe",
                "only for messages an employer must send; remove the line otherwise",
                "warning",
            )
        )
    one_click = config.unsubscribe_url or (config.unsubscribe or "").startswith("https://")
    if leavable and not one_click:
        out.append(
            Problem(
                file,
                None,
                None,
                f"{', '.join(leavable)}: people can leave these lists, but the emails have no "
                "one-click unsubscribe (an https:// page); Gmail, Yahoo and Outlook.com expect "
                "one from bulk senders",
                "set [unsubscribe] url to where 'newsletter serve' answers, or mark a list "
                "people cannot leave with [lists.NAME] unsubscribe = false",
                "warning",
            )
        )
    return out


def check_issue(ws: Workspace, path: Path) -> list[Problem]:
    """Load, render every variant and lint; all problems, nothing raised."""
    try:
        issue = ws.load_issue(path)
        variants = ws.renderer.variants(issue, audience_sets([], ws.lists))
    except ProblemsError as exc:
        return exc.problems
    columns = ws.list_columns()
    sizes = ws.list_sizes()
    file = ws.display(path)
    return [
        *picture_problems(issue, variants, ws.config, file=file),
        *unsubscribe_problems(ws.config, ws.lists, file=file),
        *lint(issue, variants, file=file, list_sizes=sizes, columns=columns),
    ]
