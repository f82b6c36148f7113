"""The mailbox that bounces and unsubscribe emails come back to: read, understood, acted on.

Each message is one of:

- a **bounce**: an RFC 3464 delivery status notification, or one of the older
  formats mail servers still send (Exim, qmail, old Exchange, …), found with
  flufl.bounce. *Hard* (a 5.x.x status, or "user unknown" wording) suppresses
  the person at once; *soft* (4.x.x, "mailbox full") is counted, and
  suppresses once 3 different issues have soft-bounced;
- an **unsubscribe email**, sent to ``unsubscribe+TOKEN@…`` (the mailto: of
  List-Unsubscribe): the person is suppressed for the lists in the token;
- an **auto-reply** (out of office: RFC 3834 ``Auto-Submitted`` and the usual
  vendor headers and subjects): ignored;
- anything else (a person writing back): left alone.

Whose bounce it is comes first from the private token in the address the
bounce was sent to (VERP: each person's messages leave with the envelope sender
``bounces+TOKEN@…``), then from a token or the Message-ID in the original
message the bounce quotes, and last from the address the bounce names, if it
is someone this newsletter sent to. What cannot be matched is reported, never
guessed.

Each message is read once: the ledger remembers every message read (by its
content), and on IMAP each is also given the keyword ``NewsletterRead``, so a
second run changes nothing.
"""

from __future__ import annotations

import email
import hashlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any, Literal, Protocol

from flufl.bounce import all_failures

from .config import Config, InboxConfig
from .ledger import Ledger, LedgerReader, Suppression, TokenRecord
from .recipient import address_key

SOFT_LIMIT = 3  # soft bounces, on different issues, that suppress an address
KEYWORD = "NewsletterRead"  # the IMAP keyword of a message this program has read
SOURCE = "inbox"

Kind = Literal["hard", "soft", "unsubscribe", "auto-reply", "other"]

# Where the address a message was delivered to is written (VERP: bounces+TOKEN@…).
_RECIPIENT_HEADERS = (
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "to",
    "cc",
    "return-path",
)
# A private token in an address (local+TOKEN@) or a link (/u/TOKEN), as the
# headers of a message we sent carry it.
_PLUS_TOKEN = re.compile(r"([A-Za-z0-9._=-]+)\+([A-Za-z2-7]{26})@", re.ASCII)
_LINK_TOKEN = re.compile(r"/u/([A-Za-z2-7]{26})\b", re.ASCII)
_QUOTED_ID = re.compile(r"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_QUOTED_ISSUE = re.compile(r"^\s*X-Newsletter-Issue:\s*(\S+)", re.IGNORECASE | re.MULTILINE)

# RFC 3463 status codes, and the wording servers use instead of (or beside) them.
_STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?<![\d.])([45])[0-5]\d(?=[ -])")
_FULL = re.compile(
    r"mailbox (?:is )?full|quota|exceed(?:s|ed)? (?:the |their |his |her )?"
    r"(?:storage|quota|mailbox size)|insufficient (?:disk |system )?storage|mailbox size limit|"
    r"out of storage|mail ?box has exceeded|(?<![\d.])[45]\.2\.2(?![\d.])",
    re.IGNORECASE,
)
_UNKNOWN = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|does not exist|"
    r"doesn't exist|mailbox unavailable|mailbox not found|recipient not found|"
    r"recipientnotfound|unknown recipient|invalid (?:recipient|mailbox)|not a valid mailbox|"
    r"no mailbox here|account (?:has been )?disabled|user not found|address rejected",
    re.IGNORECASE,
)
# Who sends bounces, what they call them, and where their copy of the original starts.
_DAEMONS = frozenset(("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon"))
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery fail|delivery has failed|"
    r"mail delivery|failure notice|returned mail|bounce|could not be delivered|non remis|"
    r"unzustellbar|nicht zustellbar|delivery problem",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(
    r"^.*(?:original message|copy of (?:the|your) message|returned message|bounced e-?mail|"
    r"message headers follow|rfc822|undelivered message).*$",
    re.IGNORECASE | re.MULTILINE,
)
_ADDRESS = re.compile(r"[A-Za-z0-9._%+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", re.ASCII)
# Given up after trying for days: the cause was temporary (a server down, a full mailbox).
_EXPIRED = re.compile(
    r"retry timeout exceeded|message expired|queue\.expired|delivery time expired|"
    r"has been delayed|will be retried|could not be delivered within|"
    r"have been failing for a long time",
    re.IGNORECASE,
)
# The subjects of out-of-office replies, in the languages schools' staff write in.
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[ -]?(?:reply|response)|autoreply|auto:|"
    r"out of (?:the )?office|away from (?:the )?office|on leave|"
    r"abwesenheitsnotiz|abwesend|réponse automatique|absence|respuesta automática|"
    r"risposta automatica|automatisch antwoord|afwezig|odpowiedź automatyczna)",
    re.IGNORECASE,
)


class InboxError(Exception):
    """The mailbox cannot be read; the message says why and what to do."""


# -- what a message is --------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What one message says about one person (a bounce may name several)."""

    kind: Kind
    email: str = ""  # the person's address key; '' when no one could be matched
    lists: str = ""  # the lists it concerns (an unsubscribe's token); '' = every list
    issue: str = ""
    code: str = ""  # the status code, such as 5.1.1
    detail: str = ""  # the mail server's words
    matched: str = ""  # how the person was found: token, message-id, address
    address: str = ""  # the address the bounce names, as written in it
    subject: str = ""
    sender: str = ""

    @property
    def is_bounce(self) -> bool:
        return self.kind in ("hard", "soft")


class Directory(Protocol):
    """What the reader looks people up in (the ledger, in practice)."""

    def token(self, token: str) -> TokenRecord | None: ...
    def by_message_id(self, message_id: str) -> tuple[str, str, str] | None: ...
    def knows(self, email: str) -> bool: ...
    def issue_named(self, name: str) -> str: ...
    def last_issue(self, email: str) -> str: ...


class LedgerDirectory:
    """People and issues as the ledger knows them: tokens, Message-IDs, addresses sent to.

    Everyone sent to is read once, on the first question that needs it."""

    def __init__(self, ledger: LedgerReader) -> None:
        self._ledger = ledger
        self._ids: dict[str, tuple[str, str, str]] | None = None
        self._people: dict[str, str] = {}  # address key -> the last issue sent to them
        self._issues: dict[str, str] = {}

    def _load(self) -> dict[str, tuple[str, str, str]]:
        if self._ids is None:
            self._ids = {}
            for record in self._ledger.issues():
                self._issues.setdefault(record.key, record.key)
                self._issues.setdefault(Path(record.file).stem, record.key)
            # Oldest send first, so each person ends with the last issue sent to them.
            keys = dict.fromkeys(s.issue for s in self._ledger.sends())
            keys.update(dict.fromkeys(k for k in self._issues.values() if k not in keys))
            for issue in keys:
                self._issues.setdefault(issue, issue)
                for d in self._ledger.deliveries(issue):
                    self._people[d.email] = d.issue
                    if d.message_id:
                        self._ids[d.message_id.strip("<>").casefold()] = (
                            d.email,
                            d.issue,
                            d.lists,
                        )
        return self._ids

    def token(self, token: str) -> TokenRecord | None:
        return self._ledger.token(token.lower())

    def by_message_id(self, message_id: str) -> tuple[str, str, str] | None:
        return self._load().get(message_id.strip().strip("<>").casefold())

    def knows(self, email: str) -> bool:
        self._load()
        return email in self._people

    def last_issue(self, email: str) -> str:
        self._load()
        return self._people.get(email, "")

    def issue_named(self, name: str) -> str:
        self._load()
        return self._issues.get(name, "")


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw)


def read(msg: Message, people: Directory, *, bounce_local: str = "bounces") -> list[Reading]:
    """What ``msg`` is, and whom it concerns: one Reading per person it names.

    ``bounce_local`` is the part before the @ of [send] bounce_address: mail to
    it (+TOKEN) is a bounce or an auto-reply; mail to another +TOKEN address of
    ours is an unsubscribe email."""
    subject = _header(msg, "subject")
    sender = parseaddr(_header(msg, "from"))[1]
    base = {"subject": subject, "sender": sender}
    tokens = _recipient_tokens(msg)
    out_of_office = _AUTO_SUBJECT.match(subject) is not None

    status = _delivery_status(msg)
    if status is None and out_of_office:
        return [Reading("auto-reply", **base)]
    failures = status if status is not None else _flufl(msg)
    if not failures and status is None and _looks_like_bounce(msg, subject, sender):
        failures = _text_failures(msg, sender)
    if failures:
        return _bounces(msg, failures, tokens, people, base, bounce_local)
    if status is not None:  # a DSN that only says delivered, relayed or expanded
        return [Reading("other", **base)]

    for local, token in tokens:
        if local.casefold() == bounce_local.casefold():
            continue
        record = people.token(token)
        if record is not None and not _is_auto_reply(msg, strict=True):
            return [
                Reading(
                    "unsubscribe",
                    email=record.email,
                    lists=record.lists,
                    issue=record.issue,
                    matched="token",
                    **base,
                )
            ]
        if record is None:
            return [Reading("unsubscribe", detail="the private link is not one of ours", **base)]
    if _is_auto_reply(msg, strict=False):
        return [Reading("auto-reply", **base)]
    return [Reading("other", **base)]


@dataclass
class _Failure:
    """One failed recipient, as the bounce reports it."""

    address: str
    permanent: bool | None  # None: the bounce does not say
    code: str = ""
    detail: str = ""


def _clean(address: str) -> str:
    """The mail address in what a bounce names (Exim names a pipe or a file with the
    address that led to it); '' when there is none."""
    address = address.strip().strip("<>")
    if "@" in address and not any(c.isspace() for c in address):
        return address
    found = _ADDRESS.search(address)
    return found.group(0) if found else ""


def _bounces(
    msg: Message,
    failures: list[_Failure],
    tokens: list[tuple[str, str]],
    people: Directory,
    base: dict[str, str],
    bounce_local: str,
) -> list[Reading]:
    for failure in failures:
        failure.address = _clean(failure.address)
    text = _own_text(msg)
    quoted = _quoted_headers(msg)
    # One person, by their token: in the address the bounce came back to (VERP), then
    # anywhere in the original message the bounce quotes.
    record = None
    for local, token in tokens:
        if local.casefold() == bounce_local.casefold():
            record = people.token(token)
            if record:
                break
    if record is None:
        for token in _quoted_tokens(quoted, text):
            record = people.token(token)
            if record:
                break
    if record is not None:
        mine = [f for f in failures if address_key(f.address) == record.email] or failures
        kind, code, detail = _classify(mine, text)
        return [
            Reading(
                kind,
                email=record.email,
                issue=record.issue,
                code=code,
                detail=detail,
                matched="token",
                address=mine[0].address,
                **base,
            )
        ]
    # The Message-ID of the original, quoted: which issue, and whose copy.
    sent = None
    for message_id in _quoted(quoted, text, "message-id", _QUOTED_ID):
        sent = people.by_message_id(message_id)
        if sent:
            break
    if sent is not None:
        email_key, issue, _lists = sent
        mine = [f for f in failures if address_key(f.address) == email_key] or failures
        kind, code, detail = _classify(mine, text)
        return [
            Reading(
                kind,
                email=email_key,
                issue=issue,
                code=code,
                detail=detail,
                matched="message-id",
                address=mine[0].address,
                **base,
            )
        ]
    issue = ""
    for name in _quoted(quoted, text, "x-newsletter-issue", _QUOTED_ISSUE):
        issue = people.issue_named(name)
        if issue:
            break
    readings = []
    seen: set[str] = set()
    for failure in failures:
        key = address_key(failure.address)
        if key in seen:
            continue
        seen.add(key)
        kind, code, detail = _classify([failure], text)
        known = bool(key) and people.knows(key)
        readings.append(
            Reading(
                kind,
                email=key if known else "",
                issue=(issue or people.last_issue(key)) if known else "",
                code=code,
                detail=detail,
                matched="address" if known else "",
                address=failure.address,
                **base,
            )
        )
    return readings


def _classify(failures: list[_Failure], text: str) -> tuple[Literal["hard", "soft"], str, str]:
    """Hard or soft, the status code and the server's words, for one person's failures."""
    codes = [f.code for f in failures if f.code]
    details = [f.detail for f in failures if f.detail]
    words = " ".join(details) or _about(text, [f.address for f in failures]) or text
    code = codes[0] if codes else ""
    if not code:
        found = _STATUS.search(words) or _STATUS.search(text)
        code = found.group(0) if found else ""
    detail = details[0] if details else _detail(text, code)
    if _FULL.search(words) or _FULL.search(detail) or code[2:].startswith("2.2"):
        return "soft", code, detail
    if all(f.permanent is False for f in failures):  # delayed: the server tries again
        return "soft", code, detail
    if _EXPIRED.search(words) and not _UNKNOWN.search(words):
        return "soft", code, detail
    if code.startswith("5"):
        return "hard", code, detail
    if code.startswith("4"):
        return "soft", code, detail
    reply = _REPLY.search(words)
    if reply:
        return ("hard" if reply.group(1) == "5" else "soft"), code, detail
    if _UNKNOWN.search(words):
        return "hard", code, detail
    return "hard", code, detail


def _about(text: str, addresses: list[str]) -> str:
    """The paragraphs of a bounce that name one of ``addresses`` (a bounce about several
    people says what happened to each in a paragraph of its own)."""
    wanted = [a.casefold() for a in addresses if a]
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n".join(p for p in paragraphs if any(a in p.casefold() for a in wanted))


def _detail(text: str, code: str) -> str:
    """The line of the bounce's own text that says why, as best can be told."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if code:
        lines_with_code = [line for line in lines if code in line]
        if lines_with_code:
            return _short(lines_with_code[0])
    for pattern in (_UNKNOWN, _FULL, _REPLY):
        for line in lines:
            if pattern.search(line):
                return _short(line)
    return ""


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the parts of a bounce ------------------------------------------------------


def _header(msg: Message, name: str) -> str:
    value = next((v for k, v in msg.raw_items() if k.lower() == name), None)
    if value is None:
        return ""
    if any("\udc80" <= c <= "\udcff" for c in value):
        # 8-bit bytes in a header (UTF-8, most likely), as the parser keeps them
        return value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (UnicodeError, LookupError, email.errors.HeaderParseError):
        return str(value)


def _recipient_tokens(msg: Message) -> list[tuple[str, str]]:
    """(local part, token) of each +TOKEN address the message was delivered to."""
    found: list[tuple[str, str]] = []
    for name in _RECIPIENT_HEADERS:
        values = [str(v) for v in msg.get_all(name, [])]
        for _, address in getaddresses(values):
            match = _PLUS_TOKEN.fullmatch(address.partition("@")[0] + "@")
            if match and (match.group(1), match.group(2).lower()) not in found:
                found.append((match.group(1), match.group(2).lower()))
    return found


def _delivery_status(msg: Message) -> list[_Failure] | None:
    """The failed and delayed recipients of an RFC 3464 report; None when it is not one."""
    parts = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    if not parts:
        return None
    failures = []
    recipients = 0
    for part in parts:
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks = [b for b in payload if isinstance(b, Message)]
        else:  # not parsed into header blocks: read it as text
            blocks = _status_blocks(part)
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            action = str(block.get("action", "")).strip().lower()
            recipients += bool(block.get("final-recipient") or block.get("original-recipient"))
            if not action.startswith(("fail", "delayed", "error")):
                continue
            address = _dsn_address(block)
            if not address:
                continue
            status = str(block.get("status", "")).strip()
            code = _STATUS.search(status)
            diagnostic = " ".join(str(block.get("diagnostic-code", "")).split())
            diagnostic = re.sub(r"^(?:smtp|x-\S+)\s*;\s*", "", diagnostic, flags=re.IGNORECASE)
            failures.append(
                _Failure(
                    address,
                    not action.startswith("delayed"),
                    code.group(0) if code else "",
                    _short(diagnostic),
                )
            )
    if failures or recipients:
        return failures
    # A report that names no recipient: read the rest as a bounce of no known format.
    return None


def _looks_like_bounce(msg: Message, subject: str, sender: str) -> bool:
    """Whether a message no parser could read still says it is a bounce."""
    report = msg.get_content_type() == "multipart/report" and (
        str(msg.get_param("report-type", "")).lower() == "delivery-status"
    )
    flagged = any(
        msg.get(h) is not None for h in ("x-ms-exchange-message-is-ndr", "x-failed-recipients")
    )
    daemon = sender.partition("@")[0].casefold() in _DAEMONS
    automatic = str(msg.get("auto-submitted", "no")).strip().lower() != "no"
    return (
        report or flagged or daemon or (automatic and _BOUNCE_SUBJECT.search(subject) is not None)
    )


def _text_failures(msg: Message, sender: str) -> list[_Failure]:
    """The failed recipients of a bounce in no format a parser knows: the DSN fields
    written out as text, X-Failed-Recipients, or the addresses in its own words
    (before the copy of the original); one without an address when it names none."""
    text = _own_text(msg)
    blocks = [
        b for b in _blocks_of(text) if b.get("final-recipient") or b.get("original-recipient")
    ]
    failures: list[_Failure] = []
    for block in blocks:
        address = _dsn_address(block)
        status = _STATUS.search(str(block.get("status", "")))
        if address:
            failures.append(_Failure(address, None, status.group(0) if status else ""))
    if failures:
        return failures
    for value in msg.get_all("x-failed-recipients", []):
        failures += [_Failure(a, None) for _, a in getaddresses([str(value)]) if "@" in a]
    if failures:
        return failures
    quoted = [a for q in _quoted_headers(msg) for _, a in getaddresses(q.get_all("to", []))]
    if len(quoted) == 1 and "@" in quoted[0]:
        return [_Failure(quoted[0], None)]
    own = _ORIGINAL.split(text, maxsplit=1)[0]
    ours = {sender.casefold(), *(a.casefold() for _, a in getaddresses(msg.get_all("to", [])))}
    seen: set[str] = set()
    for address in _ADDRESS.findall(own):
        if address.casefold() not in ours and address.casefold() not in seen:
            seen.add(address.casefold())
            failures.append(_Failure(address, None))
    return failures or [_Failure("", None)]


def _blocks_of(text: str) -> list[Message]:
    return [email.message_from_string(b.strip() + "\n") for b in re.split(r"\n\s*\n", text)]


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload(decode=True)
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    return _blocks_of(text)


def _dsn_address(block: Message) -> str:
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        value = str(block.get(name, "")).strip()
        if value:
            address = value.split(";", 1)[-1].strip().strip("<>").strip()
            if "@" in address:
                return address
    return ""


def _flufl(msg: Message) -> list[_Failure]:
    """The failed recipients flufl.bounce finds in the formats it knows."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping over an odd message: not a bounce we can read
        return []
    out = [_Failure(a.decode("ascii", "replace"), True) for a in sorted(permanent)]
    out += [_Failure(a.decode("ascii", "replace"), False) for a in sorted(temporary - permanent)]
    return out


def _own_text(msg: Message) -> str:
    """The bounce's own words: its text parts, not those of the message it returns."""
    texts: list[str] = []

    def walk(part: Message) -> None:
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            return
        if kind == "message/delivery-status" and part.is_multipart():
            blocks = [b for b in part.get_payload() if isinstance(b, Message)]
            texts.append("\n\n".join("\n".join(f"{k}: {v}" for k, v in b.items()) for b in blocks))
            return
        if part.is_multipart():
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    walk(sub)
            return
        broken = part.get_content_maintype() == "multipart"  # its boundary is not in it
        if broken or part.get_content_maintype() == "text" or kind == "message/delivery-status":
            texts.append(_text_of(part))

    walk(msg)
    return "\n".join(texts)


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, "replace")
    except LookupError:
        text = payload.decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        text = re.sub(r"<[^>]+>", " ", text)
    return text


def _quoted_headers(msg: Message) -> list[Message]:
    """The header blocks of the original message(s) a bounce returns."""
    found: list[Message] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list):
                found += [m for m in inner if isinstance(m, Message)]
        elif kind in ("text/rfc822-headers", "message/rfc822-headers"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append(email.message_from_bytes(payload))
    return found


def _quoted_tokens(quoted: list[Message], text: str) -> Iterator[str]:
    """Token-shaped strings in the original's headers (List-Unsubscribe, Return-Path),
    then in the bounce's own text (a bounce quoting the original inline)."""
    sources = ["\n".join(f"{k}: {v}" for k, v in q.items()) for q in quoted]
    sources.append(text)
    for source in sources:
        for match in _PLUS_TOKEN.finditer(source):
            yield match.group(2).lower()
        for match in _LINK_TOKEN.finditer(source):
            yield match.group(1).lower()


def _quoted(quoted: list[Message], text: str, header: str, inline: re.Pattern[str]) -> list[str]:
    """A header of the returned original: from its header block, then from the bounce's
    own text (a bounce quoting the original inline)."""
    found = [str(q[header]).strip() for q in quoted if q.get(header)]
    return found + [m.group(1) for m in inline.finditer(text)]


def _is_auto_reply(msg: Message, *, strict: bool) -> bool:
    """Whether a mail program sent this by itself (RFC 3834, vendor headers, subjects).

    ``strict``: only what says "a reply made while I am away" (not the
    ``auto-generated`` a mail program may put on an unsubscribe email it
    sends when its user clicks Unsubscribe)."""
    submitted = str(msg.get("auto-submitted", "")).split(";")[0].strip().lower()
    if submitted == "auto-replied" or (submitted not in ("", "no") and not strict):
        return True
    if msg.get("x-autoreply") is not None or msg.get("x-autorespond") is not None:
        return True
    if str(msg.get("precedence", "")).strip().lower() == "auto_reply":
        return True
    if _AUTO_SUBJECT.match(_header(msg, "subject")):
        return True
    replying = msg.get("in-reply-to") is not None or msg.get("references") is not None
    return msg.get("x-auto-response-suppress") is not None and replying and not strict


# -- acting on it --------------------------------------------------------------


Outcome = Literal[
    "suppressed",  # a hard bounce or an unsubscribe, newly suppressed
    "already",  # suppressed before: nothing changed
    "counted",  # a soft bounce, counted (not yet 3 issues)
    "suppressed-soft",  # the soft bounce that made 3 issues
    "unmatched",
    "ignored",  # an auto-reply
    "other",  # not for us: left alone
]


def act(ledger: Ledger, reading: Reading, at: str = "") -> tuple[Outcome, int]:
    """Record what a reading says in the ledger; the outcome and, for a soft bounce,
    how many different issues this address has soft-bounced on."""
    if reading.kind == "auto-reply":
        return "ignored", 0
    if reading.kind == "other":
        return "other", 0
    if not reading.email:
        return "unmatched", 0
    if reading.kind == "unsubscribe":
        if not reading.lists:
            # The token of someone only on lists nobody may leave (its lists are ''):
            # '' would mean every list, so there is nothing to unsubscribe from.
            return "other", 0
        entry = _suppression(reading, "unsubscribed", "mailto", reading.lists, at)
        return ("suppressed" if ledger.suppress(entry) else "already"), 0
    if reading.kind == "hard":
        ledger.record_bounce(
            reading.email, reading.issue, "hard", reading.code, reading.detail, SOURCE
        )
        entry = _suppression(reading, "hard bounce", SOURCE, "", at)
        return ("suppressed" if ledger.suppress(entry) else "already"), 0
    issues = ledger.record_bounce(
        reading.email, reading.issue, "soft", reading.code, reading.detail, SOURCE
    )
    if issues < SOFT_LIMIT:
        return "counted", issues
    entry = _suppression(reading, "soft bounces", SOURCE, "", at)
    return ("suppressed-soft" if ledger.suppress(entry) else "already"), issues


def _suppression(reading: Reading, reason: str, source: str, lists: str, at: str) -> Suppression:
    return Suppression(
        email=reading.email,
        lists=lists,
        reason=reason,
        code=reading.code,
        detail=reading.detail,
        issue=reading.issue,
        source=source,
        at=at,
    )


@dataclass(frozen=True)
class Result:
    reading: Reading
    outcome: Outcome
    soft_count: int = 0


@dataclass
class Summary:
    """What one run of the inbox found and did."""

    where: str
    results: list[Result] = field(default_factory=list)
    already_read: int = 0
    messages: int = 0

    def count(self, *, kind: Kind | None = None, outcome: Outcome | None = None) -> int:
        return sum(
            1
            for r in self.results
            if (kind is None or r.reading.kind == kind)
            and (outcome is None or r.outcome == outcome)
        )


def process(
    ledger: Ledger, mail: Iterable[Mail], *, bounce_local: str = "bounces", where: str = ""
) -> Summary:
    """Read each new message of ``mail``, act on it, remember it (``newsletter inbox``)."""
    summary = Summary(where)
    people = LedgerDirectory(ledger)
    for item in mail:
        summary.messages += 1
        key = "sha256:" + hashlib.sha256(item.raw).hexdigest()
        if ledger.seen(key):
            summary.already_read += 1
            item.done()
            continue
        readings = read(parse(item.raw), people, bounce_local=bounce_local)
        for reading in readings:
            outcome, n = act(ledger, reading)
            summary.results.append(Result(reading, outcome, n))
        ledger.mark_seen(key, ",".join(sorted({r.kind for r in readings})))
        item.done()
    return summary


def bounce_local(config: Config) -> str:
    """The part before the @ of [send] bounce_address (bounces+TOKEN@ is built on it)."""
    address = config.bounce_address
    local = parseaddr(address)[1].partition("@")[0] if address else ""
    return local or "bounces"


# -- the mailbox ---------------------------------------------------------------


@dataclass
class Mail:
    """One message of the mailbox; ``done()`` once it has been read and acted on."""

    raw: bytes
    mark: object = None  # what the source needs to mark it (an IMAP UID)
    _source: MailSource | None = None

    def done(self) -> None:
        if self._source is not None:
            self._source.mark(self)


class MailSource(Protocol):
    def mark(self, mail: Mail) -> None: ...


def local_mail(path: Path) -> Iterator[Mail]:
    """The messages of an mbox file or a Maildir folder (read only: the ledger
    remembers what was read)."""
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise InboxError(
                f"{path} is a folder but not a Maildir (it has no cur, new and tmp folders); "
                "give an mbox file or a Maildir folder"
            )
        box: mailbox.Mailbox[Any] = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        box = mailbox.mbox(path, create=False)
    else:
        raise InboxError(f"there is no mailbox at {path}; give an mbox file or a Maildir folder")
    try:
        for key in sorted(box.keys()):
            yield Mail(box.get_bytes(key))
    finally:
        box.close()


class Imap:
    """The mailbox on an IMAP server, over TLS with the server's certificate checked."""

    def __init__(self, settings: InboxConfig, *, timeout: float = 60.0) -> None:
        if not settings.host:
            raise InboxError(
                "no mailbox to read: set [inbox] host (an IMAP server) or [inbox] path (an "
                "mbox file or Maildir folder) in newsletter.toml, or pass --path"
            )
        if not settings.username:
            raise InboxError(
                f"[inbox] username is not set: give the account of the mailbox on {settings.host}"
            )
        self.settings = settings
        self.timeout = timeout
        self._imap: imaplib.IMAP4 | None = None
        self.keywords = False  # whether the folder keeps our keyword

    @property
    def where(self) -> str:
        s = self.settings
        return f"{s.folder} of {s.username} on {s.host}:{s.imap_port}"

    def _password(self) -> str:
        password = os.environ.get(self.settings.password_env, "")
        if not password:
            raise InboxError(
                f"the environment variable {self.settings.password_env} is not set: it must "
                f"hold the password of {self.settings.username} ([inbox] password_env)"
            )
        return password

    def _context(self) -> ssl.SSLContext:
        ca = self.settings.ca_file
        if ca is not None and not ca.is_file():
            raise InboxError(f"[inbox] ca_file {ca} does not exist")
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def open(self) -> None:
        s = self.settings
        password = self._password()
        context = self._context()
        try:
            if s.security == "tls":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    s.host or "", s.imap_port, ssl_context=context, timeout=self.timeout
                )
            else:
                imap = imaplib.IMAP4(s.host or "", s.imap_port, timeout=self.timeout)
                imap.starttls(ssl_context=context)
        except ssl.SSLCertVerificationError as exc:
            raise InboxError(
                f"the IMAP server {s.host} showed a certificate that cannot be trusted "
                f"({exc.verify_message}); if your organisation uses its own certificates, "
                "set [inbox] ca_file to its certificate file"
            ) from None
        except (ssl.SSLError, imaplib.IMAP4.error) as exc:
            raise InboxError(
                f"could not set up an encrypted connection to {s.host}:{s.imap_port} ({exc}); "
                "check [inbox] security (tls for port 993, starttls for 143) and port"
            ) from None
        except OSError as exc:
            raise InboxError(
                f"could not reach the IMAP server {s.host}:{s.imap_port} "
                f"({exc.strerror or exc}); check [inbox] host and port"
            ) from None
        self._imap = imap
        try:
            imap.login(s.username or "", password)
        except imaplib.IMAP4.error as exc:
            self.close()
            raise InboxError(
                f"the IMAP server refused to log in {s.username} ({_said(exc)}); check "
                f"[inbox] username and the password in {s.password_env}"
            ) from None
        kind, data = imap.select(_quote(s.folder))
        if kind != "OK":
            self.close()
            raise InboxError(
                f"there is no folder {s.folder!r} in the mailbox of {s.username} ({_said(data)}); "
                "check [inbox] folder"
            )
        flags = imap.untagged_responses.get("PERMANENTFLAGS", [b""])
        permanent = b" ".join(f for f in flags if isinstance(f, bytes))
        self.keywords = b"\\*" in permanent or KEYWORD.encode() in permanent

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            if imap.state == "SELECTED":
                imap.close()
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def __iter__(self) -> Iterator[Mail]:
        imap = self._imap
        if imap is None:
            raise InboxError("the IMAP mailbox is not open")
        criteria = f"UNKEYWORD {KEYWORD}" if self.keywords else "ALL"
        kind, data = imap.uid("SEARCH", criteria)
        if kind != "OK":
            raise InboxError(f"the IMAP server could not list the messages ({_said(data)})")
        uids = data[0].split() if data and isinstance(data[0], bytes) else []
        for uid in uids:
            kind, parts = imap.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            raw = next(
                (p[1] for p in parts if isinstance(p, tuple) and isinstance(p[1], bytes)),
                None,
            )
            if kind != "OK" or raw is None:
                continue
            yield Mail(raw, uid.decode(), self)

    def mark(self, mail: Mail) -> None:
        if self._imap is not None and self.keywords and isinstance(mail.mark, str):
            self._imap.uid("STORE", mail.mark, "+FLAGS", f"({KEYWORD})")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(data: object) -> str:
    if isinstance(data, imaplib.IMAP4.error):
        data = data.args[0] if data.args else ""
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return str(data)


@contextmanager
def open_mailbox(config: Config, path: Path | None = None) -> Iterator[tuple[str, Iterable[Mail]]]:
    """Where the mail is (for people to read) and its messages: ``path``, [inbox] path,
    or the IMAP mailbox of [inbox]."""
    local = path or (config.resolve(config.inbox.path) if config.inbox.path else None)
    if local is not None:
        yield str(local), local_mail(local)
        return
    imap = Imap(config.inbox)
    imap.open()
    try:
        yield imap.where, imap
    except TimeoutError:
        raise InboxError(f"the IMAP server {config.inbox.host} stopped answering") from None
    finally:
        imap.close()
