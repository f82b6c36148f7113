"""What an email adds around a briefing, found and left out: header blocks (Outlook's
From:/Sent:/To:/Cc:/Subject:, Gmail's "---------- Forwarded message ---------"), the
note above a forwarded message, quoted earlier messages, "Sent from my iPhone",
confidentiality and virus-scan footers, external-sender banners and ``[cid:…]``
placeholders. Each thing left out is recorded in the Envelope, to be listed; the
Subject, Date and From of the header block the briefing came under are kept there as
the title, date and author to use when the body does not say otherwise.

Plain text is cleaned line by line (``strip_text``); a briefing read from HTML (an
.eml or .msg) paragraph by paragraph (``strip_blocks``), with the same patterns.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

from .model import Block, Envelope
from .shapes import _space

_KEYS = r"From|Sent|Date|To|Cc|Bcc|Subject|Importance|Attachments|Reply-To|Sender"


HEADER = re.compile(r"^\s*\**(?P<key>" + _KEYS + r")\**\s*:\s*\**\s*(?P<value>.*)$", re.I)


FORWARDED = re.compile(
    r"^\s*(?:-{2,}\s*Forwarded (?:message|by .*)\s*-{2,}|Begin forwarded message:)\s*$", re.I
)


MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:Forwarded message|Original Message|Forwarded by .*)\s*-{2,}"
    r"|Begin forwarded message:|_{10,}|-{20,})\s*$",
    re.I,
)


WROTE = re.compile(r"^\s*On\s.{6,200}\swrote:\s*$", re.S)


DEVICE = re.compile(
    r"^\s*(?:Sent from my \w[\w\s-]{0,30}|Sent from (?:Outlook|Mail|Yahoo Mail|Gmail) for "
    r"\w[\w\s-]{0,20}|Sent from Outlook|Get Outlook for \w+(?:\s\w+)?)\.?\s*"
    r"(?:<https?://\S+>)?\s*$",
    re.I,
)


CID = re.compile(r"\[cid:[^\]\s]*\]")


# A paragraph an email system adds: said in words no briefing uses.
FOOTER = re.compile(
    r"this e-?mail(?: message)?,? and any (?:files|attachments|documents)"
    r"|(?:this|the) (?:e-?mail|message|communication)(?: and any (?:attachments|files))? "
    r"(?:is|are|may be|contains?) (?:strictly )?(?:confidential|private|privileged)"
    r"|intended (?:solely|only) for the (?:use of the )?(?:individual|addressee|person|named)"
    r"|if you (?:have received|receive) this (?:e-?mail|message|communication) in error"
    r"|(?:scanned|checked|swept) (?:\w+ ){0,6}for (?:viruses|malware|the presence of)"
    r"|virus[- ]free"
    r"|this (?:e-?mail|message) (?:originated|came|comes) from outside"
    r"|do not click (?:on )?links or open attachments"
    r"|(?:consider|think of) the environment before printing"
    r"|views (?:or|and) opinions (?:expressed|presented|contained)"
    r"|^\s*\[?(?:external|caution|disclaimer)\]?\s*[:\]]",
    re.I,
)


_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def subject_title(subject: str) -> str:
    """'RE: FW: Staff briefing' -> 'Staff briefing'."""
    return _space(_PREFIX.sub("", subject))


def sender_name(value: str) -> str | None:
    """'Okafor, Grace <grace@…>' -> 'Grace Okafor'; a bare address -> None."""
    name, _address = email.utils.parseaddr(value)
    name = _space(name.strip("'\" "))
    if not name or "@" in name:
        return None
    if name.count(",") == 1:  # "Surname, Firstname", as Outlook shows a directory name
        last, first = (p.strip() for p in name.split(","))
        if first and last and " " not in last:
            name = f"{first} {last}"
    return name


def header_date(value: str) -> dt.datetime | None:
    """RFC 5322 ('Mon, 3 Mar 2025 09:12:00 +0000'), Outlook ('Tuesday, 30 September 2025
    16:42', 'Tuesday, September 30, 2025 4:42 PM') or Gmail ('Mon, 3 Mar 2025 at 09:12')."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is not None:
            return parsed
    except (TypeError, ValueError, IndexError):
        pass
    from .dates import _find_date  # dates.py reads words; the time does not matter here

    found = _find_date(value.replace(" at ", " "))
    return dt.datetime.combine(found[0], dt.time()) if found else None


def _header_run(lines: list[str], start: int) -> int:
    """How many lines from ``start`` are a header block: From: then at least one of
    Sent:/Date:/To:/Subject: (a wrapped To: or Cc: line of addresses continues it)."""
    n = start
    keys: list[str] = []
    while n < len(lines):
        m = HEADER.match(lines[n])
        if m:
            keys.append(m.group("key").lower())
        elif keys and keys[-1] in ("to", "cc", "bcc") and re.search(r"[@;>]", lines[n]):
            pass
        else:
            break
        n += 1
    if keys and keys[0] == "from" and {"sent", "date", "subject", "to"} & set(keys):
        return n - start
    return 0


def _read_headers(lines: list[str], env: Envelope) -> None:
    for line in lines:
        m = HEADER.match(line)
        if not m:
            continue
        key, value = m.group("key").lower(), m.group("value").strip()
        if key == "subject" and value:
            env.subject = subject_title(value)
        elif key in ("sent", "date") and value:
            env.date = header_date(value) or env.date
        elif key == "from" and value:
            env.sender = sender_name(value) or env.sender


def strip_text(text: str, env: Envelope) -> str:
    """Plain text with everything an email added taken out (and recorded in ``env``)."""
    lines = text.split("\n")
    lines = _strip_top(lines, env)
    lines = _strip_quoted(lines, env)
    out: list[str] = []
    for line in lines:
        if DEVICE.match(line):
            env.leave_out("a line the phone added", line)
            continue
        if CID.search(line):
            env.leave_out("a picture placeholder", " ".join(CID.findall(line)))
            line = CID.sub("", line)
            if not line.strip():
                continue
        out.append(line)
    return "\n".join(_strip_footers(out, env))


def _first(lines: list[str], start: int = 0) -> int:
    n = start
    while n < len(lines) and not lines[n].strip():
        n += 1
    return n


def _strip_top(lines: list[str], env: Envelope) -> list[str]:
    """Header blocks at the top (the pasted email's own, a forward's), with the note
    above a forwarded message."""
    while True:
        n = _first(lines)
        if n < len(lines) and FOOTER.search(lines[n]):  # an external-sender banner
            end = n
            while end < len(lines) and lines[end].strip():
                end += 1
            env.leave_out("a banner the mail system added", "\n".join(lines[n:end]))
            lines = lines[end:]
            continue
        if n < len(lines) and MARKER.match(lines[n]):
            env.leave_out("a forwarding line", lines[n])
            lines = lines[n + 1 :]
            continue
        run = _header_run(lines, n)
        if run:
            _read_headers(lines[n : n + run], env)
            env.leave_out("the email's header block", "\n".join(lines[n : n + run]))
            lines = lines[n + run :]
            continue
        # A short note (8 lines at most), then a forwarded message: the forwarder's note.
        for k in range(n, min(len(lines), n + 12)):
            if FORWARDED.match(lines[k]) and _header_run(lines, _first(lines, k + 1)):
                note = [ln for ln in lines[n:k] if ln.strip()]
                if len(note) > 8 or len(" ".join(note).split()) > 80:
                    return lines
                if note:
                    env.leave_out("the note above the forwarded message", "\n".join(note))
                lines = lines[k:]
                break
        else:
            return lines


def _strip_quoted(lines: list[str], env: Envelope) -> list[str]:
    """An earlier message quoted under the briefing: from its 'On … wrote:', '-----Original
    Message-----', Outlook's rule or header block, to the end."""
    body_seen = False
    for n, line in enumerate(lines):
        two = f"{line} {lines[n + 1]}" if n + 1 < len(lines) else line
        start = None
        if (
            (body_seen and (WROTE.match(line) or (line.startswith("On ") and WROTE.match(two))))
            or (body_seen and MARKER.match(line) and _header_run(lines, _first(lines, n + 1)))
            or (body_seen and _header_run(lines, n))
        ):
            start = n
        if start is not None:
            quoted = [ln for ln in lines[start:] if ln.strip()]
            env.leave_out(f"an earlier message quoted under the briefing ({len(quoted)} lines)", "")
            env.left_out[-1] += ": " + " / ".join(q.strip() for q in quoted[:2]) + " …"
            return lines[:start]
        if line.strip():
            body_seen = True
    return lines


def _strip_footers(lines: list[str], env: Envelope) -> list[str]:
    """Paragraphs in words only an email system uses (confidentiality, virus scans)."""
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para and FOOTER.search(" ".join(para)):
            env.leave_out("a footer the mail system added", "\n".join(para))
        else:
            out.extend(para)
        para.clear()

    for line in lines:
        if line.strip():
            para.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return out


def strip_blocks(blocks: list[Block], env: Envelope) -> list[Block]:
    """The same for blocks read from an email's HTML: header blocks at the top are read
    and left out, one after the body starts begins the quoted earlier message."""
    out: list[Block] = []
    for b in blocks:
        lines = b.lines or [b.plain]
        if b.kind == "para" and (_header_run(lines, 0) or MARKER.match(b.plain)):
            if not out:  # at the top: the header of a forwarded message
                _read_headers(lines, env)
                env.leave_out("a header block", "\n".join(lines))
                continue
            rest = [x.plain for x in blocks[blocks.index(b) :] if x.plain]
            env.leave_out(f"an earlier message quoted under the briefing ({len(rest)} parts)", "")
            env.left_out[-1] += ": " + " / ".join(rest[:2])[:150] + " …"
            break
        if b.kind == "para" and (FOOTER.search(b.plain) or DEVICE.match(b.plain)):
            env.leave_out("a footer the mail system added", b.plain)
            continue
        if b.kind == "para" and CID.search(b.plain):
            env.leave_out("a picture placeholder", " ".join(CID.findall(b.plain)))
            b.plain = _space(CID.sub("", b.plain))
            b.md = _space(re.sub(r"\\\[cid:[^\]\s]*\\\]", "", b.md))
            b.lines = [ln for ln in (_space(CID.sub("", x)) for x in b.lines) if ln]
            if not b.plain:
                continue
        out.append(b)
    return out
