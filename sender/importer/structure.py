"""Blocks -> Draft: the title, the lines under it (date, author, subtitle), the greeting
and the sign-off. The date itself is read by dates.py, the sections in between by
sections.py.
"""

from __future__ import annotations

import datetime as dt
import re

from .dates import _find_date, _guess_date, _title_and_date
from .markdown import _defuse_all, _escape_line_start, _md_text
from .model import Block, BriefingError, Draft, Envelope, Picture
from .sections import _build_sections, _headings, _preheader
from .shapes import _short, _space, _title_shape

_NAME = r"[A-Z][\w’'.-]*(?:\s+(?:[A-Z][\w’'.-]*|de|van|von|der|le|la|da|di|du|al|bin)){0,3}"


_POSSESSIVE = re.compile(r"^(?P<name>[A-Z][\w.-]*(?:\s+[A-Z][\w’'.-]*){1,3})[’']s?\s+\S")


_NOT_A_PERSON = re.compile(
    r"^(The|A|An|Our|My|Your|This|Their)\b|\b(Council|Services?|Schools?|Team|Trust|Department|"
    r"Directorate|Authority|Board|Partnership|Academy|College|University|City|Centre|Group|"
    r"Children|Families|Education|Leaders|Governors|Headteachers|Heads|Staff|Teachers|Partners|"
    r"Members|Trustees|Officers|Managers)$"
)


_AUTHOR_LINE = re.compile(
    r"^(?:(?:[Bb]y|From)\s+)?(?P<name>" + _NAME + r")\s*(?:,|\s[-–—]\s)\s*(?P<role>\S.*)$"
)


_BY_LINE = re.compile(r"^(?:[Bb]y|From)\s+(?P<name>" + _NAME + r")$")


_ROLE_WORDS = re.compile(
    r"\b(Director|Head|Headteacher|Manager|Officer|Chief|Executive|Leader|Lead|Member|Chair|"
    r"Councillor|Cabinet|Principal|President|Secretary|Coordinator|Co-ordinator|Commissioner|"
    r"Assistant|Deputy|Strategic|Editor|Team|Clerk|Adviser|Advisor|Administrator|Consultant|"
    r"Specialist|Inspector|Teacher|Librarian|Trustee|SENCo)\b"
)


_GREETING = re.compile(
    r"^(?:(?:dear|hello|hi|hey|good (?:morning|afternoon|evening)|greetings|welcome|to all)\b"
    r"|all,|colleagues,?$)",
    re.I,
)


_CLOSING = re.compile(
    r"^((with )?(best|kind|kindest|warm|warmest|many|sincere) (wishes|regards|thanks)|regards|"
    r"thanks|thank you|hope to see you|see you|take care|all the best|yours|cheers|speak soon|"
    r"until next time|best|warmly|with (thanks|gratitude|best wishes)|respectfully)\b",
    re.I,
)


# Lines of a signature that are not for a newsletter: a phone number, an email or web
# address, a postal address (a UK postcode), or a line labelled as one of them.
_CONTACT = re.compile(
    r"\+?\d[\d ()-]{8,}\d"
    r"|[\w.+-]+@[\w-]+\.[\w.-]+"
    r"|\bwww\.|https?://"
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b"
    r"|^\s*(?:t|tel|telephone|m|mob|mobile|p|phone|dd|direct|e|email|w|web|a|address)\s*[:.]\s",
    re.I,
)


_TITLE = r"(?:(?:Dr|Mr|Mrs|Ms|Miss|Mx|Prof|Cllr|Councillor|Sir|Dame|Rev)\.?\s+)?"


_SIGNED_NAME = re.compile(r"^" + _TITLE + r"(?P<name>" + _NAME + r")$")


def _structure(
    blocks: list[Block],
    name: str,
    images: list[Picture] | None = None,
    envelope: Envelope | None = None,
) -> Draft:
    """``images``: the pictures the blocks' image blocks point into, known to the sections
    as they are built (which to leave out, which came with alt text). ``envelope``: what
    the email around the briefing said (its Subject, Date, From) and what was left out."""
    env = envelope or Envelope()
    draft = Draft(source=name, title="", date=dt.date.today(), sections=[], images=images or [])
    i = 0
    sent = env.date.date() if env.date else None
    everything = " ".join(b.plain for b in blocks)
    # Title: a Word "Title", else the first line (not a greeting), else the email's Subject.
    titled = next((k for k, b in enumerate(blocks[:3]) if b.style == "title"), None)
    from_subject = False
    if titled is not None:
        first = blocks.pop(titled)
    else:
        first = blocks[0]
        if (
            first.kind in ("para", "heading")
            and _title_shape(first.plain)
            and not _GREETING.match(first.plain)
            and not (env.subject and first.plain.rstrip()[-1:] in ",.:;")
        ):
            blocks.pop(0)
        elif env.subject:
            first, from_subject = Block("para", plain=env.subject), True
        else:
            first = Block("para", plain="")
    title_text, date_found = _title_and_date(first.plain, draft, sent, everything)
    draft.title = title_text or "TODO: title"
    draft.recognised["title"] = title_text + (" (the email's subject)" if from_subject else "")
    if not title_text:
        draft.recognised["title"] = "none found"
        draft.note("title", "no title line found at the top; write the title")

    author = _POSSESSIVE.match(draft.title)
    if author and not _NOT_A_PERSON.search(author.group("name")):
        draft.author_name = author.group("name")
        draft.recognised["author"] = f"{draft.author_name} (from the title)"

    # Lines under the title: a date, the author, a subtitle.
    while i < len(blocks) and i < 3:
        b = blocks[i]
        if b.kind != "para" or not _short(b.plain, 25, 200):
            break
        if b.style == "subtitle" and not draft.subtitle:
            draft.subtitle = b.plain
            i += 1
            continue
        found = _find_date(b.plain)
        if found and not date_found and len(b.plain) - len(found[1].group()) < 12:
            draft.date = found[0]
            date_found = True
            draft.recognised["date"] = f"{found[0].isoformat()} (under the title)"
            i += 1
            continue
        if _author_line(b.plain, draft):
            i += 1
            continue
        if not _GREETING.match(b.plain) and _is_greeting(blocks, i + 1) and not draft.subtitle:
            draft.subtitle = b.plain
            draft.recognised["subtitle"] = b.plain
            i += 1
            continue
        break
    if i < len(blocks) and _is_greeting(blocks, i):
        draft.greeting = blocks[i].plain
        draft.recognised["greeting"] = draft.greeting
        draft.note(
            "greeting",
            "kept as written. To greet each person by name, write instead:\n"
            'greeting: Dear {{ first_name | default("colleagues") }},',
        )
        i += 1
    body = blocks[i:]
    if not body:
        raise BriefingError(
            f"{name} has nothing after its title and greeting; there are no sections to import"
        )

    sign_off, body = _split_sign_off(body, draft)
    if (
        draft.author_name
        and not draft.author_role
        and "signature" not in draft.recognised.get("author", "")
    ):
        where = "the title" if "title" in draft.recognised.get("author", "") else "a 'By' line"
        draft.note(
            "author",
            f"'{draft.author_name}' was taken from {where}; check it, and add "
            "'role: …' under it if the issue should show their role",
        )
    if not draft.author_name and env.sender:
        draft.author_name = env.sender
        draft.recognised["author"] = f"{env.sender} (the email's From: line)"
        draft.note(
            "author",
            f"'{env.sender}' sent the email; check they are the author, and add 'role: …'",
        )
    if not date_found:
        _guess_date(draft, blocks, sent)

    heads, numbered = _headings(body)
    draft.numbered = numbered
    _build_sections(draft, body, heads)
    if sign_off:
        draft.sign_off = "\n\n".join(_escape_line_start(_md_text(line)) for line in sign_off)
        draft.recognised["sign-off"] = f"{len(sign_off)} line(s): {' / '.join(sign_off)}"
    if draft.sections:
        draft.preheader = _preheader(draft)
        draft.note("preheader", "made from the section headings; write a one-line summary")
    draft.left_out = env.left_out + draft.left_out
    for note in env.notes:
        draft.note("", note)
    _defuse_all(draft)
    return draft


def _author_line(text: str, draft: Draft) -> bool:
    """'Steve Kay, Director of …' (or 'By Steve Kay') under the title: the author."""
    by = _BY_LINE.match(text)
    if by:
        draft.author_name = by.group("name")
        draft.recognised["author"] = f"{draft.author_name} (a 'By' line)"
        return True
    m = _AUTHOR_LINE.match(text)
    if not m:
        return False
    name, role = m.group("name").strip(), m.group("role").strip()
    known = draft.author_name
    if known and not name.startswith(known):
        return False
    if not known and not _ROLE_WORDS.search(role):
        return False
    # "…EmployabilityRegular Blog …": two lines run together when pasted.
    joined = re.search(r"(?<=[a-z]{3})(?=[A-Z][a-z])", role)  # not "McKay", "MacLeod"
    if joined and len(role[joined.start() :].split()) >= 3:
        rest = _space(role[joined.start() :])
        role = role[: joined.start()].strip()
        draft.subtitle = draft.subtitle or rest
        draft.note(
            "subtitle",
            f"the line '{_space(text)}' looked like two run together (a paste); "
            "it was split into the author's role and this subtitle",
        )
        draft.recognised["subtitle"] = rest
    draft.author_name = name
    draft.author_role = role
    draft.recognised["author"] = f"{name}, {role}"
    return True


def _is_greeting(blocks: list[Block], i: int) -> bool:
    if i >= len(blocks) or blocks[i].kind != "para":
        return False
    text = blocks[i].plain
    return bool(_GREETING.match(text)) and _short(text, 8, 70)


def _split_sign_off(body: list[Block], draft: Draft) -> tuple[list[str], list[Block]]:
    """The closing lines after the last section: 'Hope to see you soon!', 'Steve'."""
    lines: list[str] = []
    k = len(body)
    while k > 1:
        b = body[k - 1]
        short = (
            b.kind in ("para", "list")
            and not b.bold
            and b.lines
            and all(_short(ln, 10, 80) for ln in b.lines)
            and (b.kind == "para" or b.names)
        )
        if not short:
            break
        lines = b.lines + lines
        k -= 1
    if not lines:
        return [], body
    names = {n for n in (draft.author_name, (draft.author_name or "").split(" ")[0]) if n}
    start = next((j for j, ln in enumerate(lines) if _CLOSING.match(ln)), None)
    if start is None:
        start = next(
            (j for j, ln in enumerate(lines) if any(ln.startswith(n) for n in names)), None
        )
    if start is None:
        return [], body
    # Whole blocks only: the first block holding the start line, and all after it.
    count = 0
    cut = len(body)
    for j in range(k, len(body)):
        if count + len(body[j].lines) > start:
            cut = j
            break
        count += len(body[j].lines)
    lines = [ln for b in body[cut:] for ln in b.lines]
    return _signature(lines, draft), body[:cut]


def _signature(lines: list[str], draft: Draft) -> list[str]:
    """The sign-off's lines as kept: the closing, and after it a signature of name, role
    and organisation in any order, read into the author; its phone numbers, addresses and
    organisation lines are left out (and listed)."""
    closing = next((j for j, ln in enumerate(lines) if _CLOSING.match(ln)), -1)
    kept: list[str] = []
    name = role = None
    for j, ln in enumerate(lines):
        if j <= closing:
            kept.append(ln)
            continue
        if _CONTACT.search(ln):
            draft.left_out.append(f"a contact line of the signature: {ln}")
            continue
        if _NOT_A_PERSON.search(ln) and not _ROLE_WORDS.search(ln):
            draft.left_out.append(f"the organisation line of the signature: {ln}")
            continue
        kept.append(ln)
        one = _AUTHOR_LINE.match(ln)
        signed = _SIGNED_NAME.match(ln)
        if one and _ROLE_WORDS.search(one.group("role")) and (name is None or role is None):
            if name is None or one.group("name").startswith(name):
                name, role = one.group("name").strip(), one.group("role").strip()
        elif signed and not _ROLE_WORDS.search(ln) and name is None:
            name = ln.strip()  # as signed, with a title such as "Dr"
        elif _ROLE_WORDS.search(ln) and role is None and name is not None:
            role = ln.strip().rstrip(",")
    if name is not None:
        _signed_author(draft, name, role)
    return kept


def _signed_author(draft: Draft, name: str, role: str | None) -> None:
    known = draft.author_name
    if known and name != known and not (known.startswith(name + " ") or name.startswith(known)):
        return  # signed by someone else (a first name that is not the author's, say)
    if not known:
        if " " not in name and role is None:
            return  # a first name alone is a sign-off, not an author
        draft.author_name = name
        draft.author_role = role
        what = f"{name}, {role}" if role else name
        draft.recognised["author"] = f"{what} (from the signature)"
        draft.note("author", "taken from the signature at the end; check it")
    elif name.startswith(known) and len(name) > len(known):
        draft.author_name = name  # "Steve" in the title, "Steve Kay" signed
    if role and not draft.author_role and (draft.author_name or "").startswith(name.split()[0]):
        draft.author_role = role
