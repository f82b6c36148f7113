"""Variant × recipient → bytes: stage-2 personalisation, MIME and headers.

Everything that is the same for every recipient of a variant is prepared once
as bytes: the headers that do not vary, the MIME frame, and the quoted-printable
encoding of every literal stretch of the HTML and text parts. Per recipient we
encode only the filled-in values and join.

How the quoted-printable bodies stay valid when values of any length are
spliced in: every value starts on a line of its own and is followed by a soft
line break (``=`` CRLF) unless it ends its part, so the encoded literal lines
never depend on a value's length. A soft line break decodes to nothing, so
the decoded part is exactly the literal text with the values in place (line
breaks, in literals and values alike, as CRLF: the canonical form of text).

Guarantees of ``MessageTemplate.render`` (tests hold us to them):

* ``multipart/alternative``: ``text/plain`` then ``text/html``, both UTF-8 and
  quoted-printable; CRLF line endings; MIME-Version 1.0.
* Body lines are at most 76 octets; header lines at most 78 where a header
  can be folded, never more than 998.
* The boundary contains ``==``, which quoted-printable output cannot contain
  (``=`` is only ever followed by two hex digits or by the line end).
* No line starts with ``.`` or ``From `` (the first octet is encoded instead),
  so the bytes need no SMTP dot-stuffing and survive mbox ``From `` mangling.
* Values never reach a header with a line break in them: a CR or LF in a
  header value raises ``ValueError``; non-ASCII goes into RFC 2047 words.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from operator import itemgetter

from .config import ASCII_ADDRESS, DOMAIN_NAME, HEADER_URL, Config, unsubscribe_links
from .pictures import Picture
from .placeholders import PLACEHOLDER, Context, Placeholder, escape, find, split
from .problems import Problem
from .recipient import Recipient
from .transports.base import Envelope
from .variant import Variant

__all__ = [
    "Envelope",
    "MessageTemplate",
    "MissingFieldError",
    "check_fields",
    "header_text",
    "message_id",
    "send_date",
    "variant_for",
]

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
_HEADER_LINE = 78  # RFC 5322 "SHOULD"
_HEADER_LIMIT = 998  # RFC 5322 "MUST"
_QP_WIDTH = 75  # characters before the "=" of a soft break: lines <= 76 (RFC 2045)

ONE_CLICK = "List-Unsubscribe=One-Click"


class MissingFieldError(ValueError):
    """A placeholder without a default met a recipient without that field."""

    def __init__(self, field: str, email: str) -> None:
        self.field = field
        self.email = email
        super().__init__(
            f"{email} has no value for '{field}', which is used without a default "
            f"(run check_fields before sending)"
        )


# ---------------------------------------------------------------------------
# Dates and identifiers


def send_date() -> datetime:
    """The Date of a send: ``SOURCE_DATE_EPOCH`` (UTC) when set, else now (local zone)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            seconds = int(epoch)
        except ValueError:
            raise ValueError(
                f"SOURCE_DATE_EPOCH must be whole seconds since 1970, not {epoch!r}"
            ) from None
        return datetime.fromtimestamp(seconds, tz=UTC)
    return datetime.now(UTC).astimezone()


_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


def _label(text: str, fallback: str) -> str:
    """Lower-case letters, digits and '-' only: a dot-atom label safe anywhere."""
    return _NOT_LABEL.sub("-", text.lower()).strip("-") or fallback


def _check_domain(domain: str) -> str:
    if not DOMAIN_NAME.fullmatch(domain):
        raise ValueError(f"domain {domain!r} is not a valid domain name (e.g. news.example.org)")
    return domain


def message_id(slug: str, email: str, domain: str, *, salt: str = "") -> str:
    """``<hash.slug@domain>``: the same issue and address always give the same id.

    So a resumed send repeats the id of an attempt that may have got through,
    and receivers can drop the duplicate. ``salt`` makes other ids (test sends).
    """
    key = f"{slug}\0{email}" + (f"\0{salt}" if salt else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"<{digest}.{_label(slug, 'issue')}@{_check_domain(domain)}>"


# ---------------------------------------------------------------------------
# Quoted-printable


def _tokens() -> tuple[list[str], list[str]]:
    plain = [chr(b) if 33 <= b <= 126 and b != 61 else f"={b:02X}" for b in range(256)]
    plain[9] = "\t"
    plain[32] = " "
    hexed = [f"={b:02X}" for b in range(256)]
    return plain, hexed


_PLAIN, _HEXED = _tokens()


def _line_start_hazard(line: bytes, i: int) -> bool:
    """'.' (SMTP end of data) or 'From ' (mbox) at the start of an encoded line."""
    b = line[i]
    return b == 0x2E or (b == 0x46 and line.startswith(b"From ", i))


def _qp_line(line: bytes, out: list[str]) -> None:
    """One logical line (no line break in it) as encoded lines of <= 76 octets."""
    last = len(line) - 1
    cur: list[str] = []
    width = 0
    for i, b in enumerate(line):
        if (width == 0 and _line_start_hazard(line, i)) or (i == last and b in (9, 32)):
            tok = _HEXED[b]
        else:
            tok = _PLAIN[b]
        if width + len(tok) > _QP_WIDTH:
            out.append("".join(cur) + "=")
            cur, width = [], 0
            if _line_start_hazard(line, i):
                tok = _HEXED[b]
        cur.append(tok)
        width += len(tok)
    out.append("".join(cur))


def _qp(text: str) -> bytes:
    """Quoted-printable for a stretch of text that starts at the start of a line.

    Line breaks (LF, CRLF or CR) become CRLF hard breaks; whitespace at the end
    of the stretch is encoded, so it is safe whatever follows.
    """
    if not text:
        return b""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for line in text.encode("utf-8").split(b"\n"):
        _qp_line(line, out)
    return "\r\n".join(out).encode("ascii")


def _with_break(encoded: bytes) -> bytes:
    """End an open line with a soft break so whatever follows starts a new line."""
    if encoded and not encoded.endswith(CRLF):
        return encoded + SOFT_BREAK
    return encoded


# Printable ASCII without '=', not starting or ending with blank: needs no encoding.
_PLAIN_VALUE = re.compile(r"[!-<>-~](?:[ !-<>-~]{0,73}[!-<>-~])?")


def _qp_value(value: str, last: bool) -> bytes:
    """A filled-in value, encoded; unless it ends its part, then a soft break."""
    if _PLAIN_VALUE.fullmatch(value) and value[0] != "." and not value.startswith("From "):
        encoded = value.encode("ascii")
        return encoded if last else encoded + SOFT_BREAK
    encoded = _qp(value)
    return encoded if last else _with_break(encoded)


# ---------------------------------------------------------------------------
# Headers


def _no_breaks(what: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} contains a line break, which cannot go into a mail header")
    return value


# Control characters (C0 but tab, DEL, C1) and the Unicode line separators:
# readers flag them as defects or treat them as line breaks. Dropped from headers.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


_BLANKS = re.compile(r"[ \t]+")


def header_text(what: str, value: str) -> str:
    """``value`` as it will appear in a header: ValueError for CR/LF, controls dropped."""
    return _CONTROLS.sub("", _no_breaks(what, value))


def _check_address(what: str, address: str) -> str:
    _no_breaks(what, address)
    if not ASCII_ADDRESS.fullmatch(address):
        raise ValueError(
            f"{what} {address!r} cannot go into a header as it is "
            "(ASCII user@domain expected; addresses needing SMTPUTF8 are not supported)"
        )
    return address


# RFC 2047 5(3): the only characters an encoded-word in a phrase may show as-is.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


# RFC 2047 5(1): in unstructured text (Subject) any printable ASCII but "=?_".
_Q_SAFE_TEXT = frozenset(b for b in range(33, 127) if b not in b"=?_")


def _q_char(ch: str, safe: frozenset[int]) -> str:
    out = []
    for b in ch.encode("utf-8"):
        if b in safe:
            out.append(chr(b))
        elif b == 32:
            out.append("_")
        else:
            out.append(f"={b:02X}")
    return "".join(out)


def _encoded_words(text: str, width: int, *, phrase: bool) -> list[str]:
    """``text`` as RFC 2047 words of at most ``width`` characters, whole characters each.

    Readers drop the whitespace between encoded words (RFC 2047 6.2), so every
    character, spaces included, goes inside the words. Some readers (Python's
    address parser, some mail clients) put a space back where two words meet,
    so words are cut before a space of the text when possible, carrying the
    space inside the next word. Q or B, whichever is shorter overall.
    """
    safe = _Q_SAFE if phrase else _Q_SAFE_TEXT
    data = text.encode("utf-8")
    use_q = sum(1 if b in safe or b == 32 else 3 for b in data) <= 4 * ((len(data) + 2) // 3)
    prefix = "=?utf-8?q?" if use_q else "=?utf-8?b?"
    room = width - len(prefix) - 2
    if use_q:
        encoded = [_q_char(ch, safe) for ch in text]
        sizes = [len(e) for e in encoded]
        limit = room
    else:
        sizes = [len(ch.encode("utf-8")) for ch in text]
        limit = room // 4 * 3  # bytes that base64 into ``room`` characters
    cuts: list[int] = [0]
    size = 0
    blank_run = -1  # where the last run of blanks in this word began
    for i, unit in enumerate(sizes):
        while size + unit > limit and i > cuts[-1]:
            cut = blank_run if blank_run > cuts[-1] else i
            size -= sum(sizes[cuts[-1] : cut])
            cuts.append(cut)
            blank_run = -1
        if text[i] in " \t" and i > cuts[-1] and text[i - 1] not in " \t":
            blank_run = i
        size += unit
    cuts.append(len(text))
    words = []
    for a, b in itertools.pairwise(cuts):
        if use_q:
            body = "".join(encoded[a:b])
        else:
            body = base64.b64encode(text[a:b].encode("utf-8")).decode("ascii")
        words.append(f"{prefix}{body}?=")
    return words


def _fold(name: str, tokens: list[str]) -> bytes:
    """``Name: t1 t2 …`` folded before a token when a line would pass 78 octets.

    The first token stays on the first line: a single-token value (Message-ID,
    a long List-Unsubscribe URL) is never folded, since readers then see it
    with a leading space; it may pass 78 octets but never 998.
    """
    lines: list[str] = []
    line = name + ":"
    has_token = False
    for tok in tokens:
        if has_token and len(line) + 1 + len(tok) > _HEADER_LINE:
            lines.append(line)
            line = " " + tok
        else:
            line += " " + tok
        has_token = True
    lines.append(line)
    if max(len(x) for x in lines) > _HEADER_LIMIT:
        raise ValueError(f"the {name} header would have a line longer than 998 characters")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _word_width(name: str) -> int:
    return max(40, min(75, _HEADER_LINE - len(name) - 2))


# Words of printable ASCII separated by single spaces, with no "=?" in them.
_PLAIN_TEXT = re.compile(r"(?!.*=\?)[!-~]+(?: [!-~]+)*")


def _unstructured(name: str, text: str) -> bytes:
    """A Subject-like header: plain when it can be, else RFC 2047, folded."""
    text = header_text(name, text)
    if _PLAIN_TEXT.fullmatch(text) and all(len(w) <= 77 - len(name) for w in text.split(" ")):
        return _fold(name, text.split(" "))
    if not text:
        return f"{name}:\r\n".encode("ascii")
    return _fold(name, _encoded_words(text, _word_width(name), phrase=False))


_ATOMS = re.compile(
    r"(?!.*=\?)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)
_QUOTABLE = re.compile(r"(?!.*=\?)[ -~]*[!-~][ -~]*")


def _phrase(name: str, text: str) -> list[str]:
    """A display name as header tokens: atoms, one quoted string, or encoded words.

    Encoded words whenever a plain word would not fit on a line: they fold
    anywhere, so no name, however long, makes a header line pass 998 octets.
    """
    fits = _HEADER_LINE - len(name) - 2
    if _ATOMS.fullmatch(text) and all(len(w) <= fits for w in text.split(" ")):
        return text.split(" ")
    if _QUOTABLE.fullmatch(text) and text == text.strip() and "  " not in text:
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) <= fits:
            return [quoted]
    return _encoded_words(text, _word_width(name), phrase=True)


def _mailbox(name: str, display: str, address: str) -> bytes:
    """``Name: display <address>`` (or just the address when there is no name)."""
    # Readers fold runs of blanks in a name to one space; we do it first.
    display = " ".join(_BLANKS.split(header_text(f"the {name} display name", display).strip()))
    _check_address(f"the {name} address", address)
    if not display:
        return _fold(name, [address])
    return _fold(name, [*_phrase(name, display), f"<{address}>"])


def _header(name: str, value: str) -> bytes:
    """A header whose value we built ourselves (ASCII, known not to need folding)."""
    return _fold(name, [value])


# ---------------------------------------------------------------------------
# The template


def _strict(ph: Placeholder, fields: Mapping[str, str], email: str) -> str:
    value = ph.value(fields)
    if value is None:
        raise MissingFieldError(ph.field, email)
    return value


def _fill_strict(text: str, fields: Mapping[str, str], email: str, context: Context) -> str:
    out: list[str] = []
    pos = 0
    for match, ph in find(text):
        out.append(text[pos : match.start()])
        out.append(escape(_strict(ph, fields, email), context))
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


_TO, _SUBJECT, _MESSAGE_ID, _UNSUBSCRIBE = 0, 1, 2, 3
_FIRST_VALUE = 4


def _list_unsubscribe(links: list[str]) -> bytes:
    """``List-Unsubscribe: <https://…>, <mailto:…>`` (RFC 2369), folded between addresses."""
    tokens = [f"<{link}>," for link in links]
    tokens[-1] = tokens[-1].rstrip(",")
    return _fold("List-Unsubscribe", tokens)


def _picture_part(picture: Picture, domain: str) -> bytes:
    """An inline picture part, base64 in 76-character lines (RFC 2045), made once per variant."""
    body = base64.encodebytes(picture.data).replace(b"\n", CRLF)
    name = picture.filename
    return (
        _fold("Content-Type", [f"{picture.mime};", f'name="{name}"'])
        + b"Content-Transfer-Encoding: base64\r\n"
        + f"Content-ID: <{picture.cid(domain)}>\r\n".encode("ascii")
        + _fold("Content-Disposition", ["inline;", f'filename="{name}"'])
        + CRLF
        + body.rstrip(CRLF)
    )


class MessageTemplate:
    """One variant, prepared: ``render(recipient)`` gives that person's message as bytes."""

    def __init__(
        self,
        variant: Variant,
        config: Config,
        *,
        date: datetime | None = None,
        test: bool = False,
    ) -> None:
        self.variant = variant
        self.config = config
        self.test = test
        when = date if date is not None else send_date()
        if when.tzinfo is None:
            when = when.astimezone()
        self.date = when
        self.domain = _check_domain(config.domain)
        from_name, from_address = parseaddr(_no_breaks("the sender", config.sender))
        self.sender_address = _check_address("the sender (from)", from_address)
        # A test send must not share a Message-ID with the real one later,
        # or the receiver may drop the real one as a duplicate.
        self._salt = f"test {when.isoformat()}" if test else ""
        self._subject = ("[TEST] " if test else "") + _no_breaks("the subject", variant.subject)
        self._subject_dynamic = any(True for _ in find(self._subject))

        digest = hashlib.sha256(
            "\0".join(
                [variant.slug, variant.key, variant.subject, variant.html, variant.text]
            ).encode("utf-8", "surrogatepass")
        ).hexdigest()
        self.boundary = f"==nl_{digest[:24]}=="

        # Several addresses (a page, a mailbox), each perhaps holding the person's token.
        self._unsubscribe = unsubscribe_links(config, variant.audiences)
        for link in self._unsubscribe:
            if not HEADER_URL.fullmatch(PLACEHOLDER.sub("x", link)):
                raise ValueError(
                    f"the unsubscribe address {link!r} must be ASCII with no "
                    "spaces or angle brackets (percent-encode them)"
                )
        self._unsubscribe_dynamic = any(True for link in self._unsubscribe for _ in find(link))

        # The message as constant bytes and numbered holes. Holes 0-3 are
        # headers; then each distinct (placeholder, context, ends its part)
        # of the bodies, encoded once per recipient however often it is used.
        self._values: list[tuple[Placeholder, Context, bool]] = []
        index: dict[tuple[Placeholder, Context, bool], int] = {}
        layout: list[bytes | int] = []

        def emit(piece: bytes | int) -> None:
            if isinstance(piece, bytes) and layout and isinstance(layout[-1], bytes):
                layout[-1] += piece
            elif piece != b"":
                layout.append(piece)

        # Headers. Date first, the order most software writes them in.
        emit(_header("Date", format_datetime(when)))
        emit(_mailbox("From", from_name, from_address))
        if config.reply_to:
            reply_name, reply_address = parseaddr(_no_breaks("reply_to", config.reply_to))
            emit(_mailbox("Reply-To", reply_name, reply_address))
        emit(_TO)
        if self._subject_dynamic:
            emit(_SUBJECT)
        else:
            emit(_unstructured("Subject", self._subject))
        emit(_MESSAGE_ID)
        labels = ".".join(_label(a, "list") for a in sorted(variant.audiences)) or "everyone"
        emit(_fold("List-Id", [*_phrase("List-Id", config.name), f"<{labels}.{self.domain}>"]))
        if self._unsubscribe:
            if self._unsubscribe_dynamic:
                emit(_UNSUBSCRIBE)
            else:
                emit(_list_unsubscribe(self._unsubscribe))
            # RFC 8058: one click only where there is a page to POST to.
            if any(link.startswith("https://") for link in self._unsubscribe):
                emit(_header("List-Unsubscribe-Post", ONE_CLICK))
        emit(_unstructured("X-Newsletter-Issue", variant.slug))
        # Out-of-office and other automatic replies: Exchange sends none for OOF/AutoReply;
        # most other responders hold back for bulk mail.
        emit(b"X-Auto-Response-Suppress: OOF, AutoReply\r\nPrecedence: bulk\r\n")
        emit(b"MIME-Version: 1.0\r\n")
        emit(_fold("Content-Type", ["multipart/alternative;", f'boundary="{self.boundary}"']))
        emit(CRLF)

        # The CRLF before a delimiter belongs to the delimiter, not to the part.
        delimiter = f"--{self.boundary}\r\n".encode("ascii")
        # With pictures to embed, the HTML and its pictures are one multipart/related
        # part (RFC 2387): mail programs show them together, the text part stays light.
        related = f"{self.boundary}_r".replace("==_r", "_r==")
        embedded = variant.embedded and bool(variant.pictures)
        for subtype, text, kind in (
            ("plain", variant.text, "text"),
            ("html", variant.html, "html"),
        ):
            emit(delimiter if subtype == "plain" else CRLF + delimiter)
            if subtype == "html" and embedded:
                emit(
                    _fold(
                        "Content-Type",
                        ["multipart/related;", 'type="text/html";', f'boundary="{related}"'],
                    )
                )
                emit(f"\r\n--{related}\r\n".encode("ascii"))
            emit(f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode("ascii"))
            emit(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
            segments = split(text, "html" if kind == "html" else "text")
            last = len(segments) - 1
            for n, seg in enumerate(segments):
                if isinstance(seg, str):
                    encoded = _qp(seg)
                    emit(_with_break(encoded) if n < last else encoded)
                else:
                    # A value that ends its part takes no soft break after it.
                    key = (seg.placeholder, seg.context, n == last - 1 and not segments[last])
                    if key not in index:
                        index[key] = _FIRST_VALUE + len(self._values)
                        self._values.append(key)
                    emit(index[key])
        if embedded:
            for picture in variant.pictures:
                emit(f"\r\n--{related}\r\n".encode("ascii") + _picture_part(picture, self.domain))
            emit(f"\r\n--{related}--\r\n".encode("ascii"))
            emit(f"--{self.boundary}--\r\n".encode("ascii"))
        else:
            emit(f"\r\n--{self.boundary}--\r\n".encode("ascii"))
        # render() looks the pieces up in one list, values then constants.
        holes = _FIRST_VALUE + len(self._values)
        self._constants = [piece for piece in layout if isinstance(piece, bytes)]
        order: list[int] = []
        constant = holes
        for piece in layout:
            if isinstance(piece, bytes):
                order.append(constant)
                constant += 1
            else:
                order.append(piece)
        self._pick = itemgetter(*order)

    # -- per recipient -----------------------------------------------------

    def message_id(self, recipient: Recipient) -> str:
        return message_id(self.variant.slug, recipient.email, self.domain, salt=self._salt)

    def envelope(self, recipient: Recipient, *, message_id: str | None = None) -> Envelope:
        """``message_id``: the one the ledger gave this person, if not the template's own."""
        return Envelope(
            sender=self.sender_address,
            recipient=_check_address("the recipient address", recipient.email),
            message_id=message_id or self.message_id(recipient),
        )

    def render(self, recipient: Recipient, *, message_id: str | None = None) -> bytes:
        """The complete RFC 5322 message for one person (CRLF line endings)."""
        fields = recipient.fields
        email = recipient.email
        mid = message_id or self.message_id(recipient)
        values: list[bytes] = [
            _mailbox("To", recipient.name, email),
            b"",
            b"Message-ID: " + mid.encode("ascii") + CRLF,
            b"",
        ]
        if self._subject_dynamic:
            values[_SUBJECT] = _unstructured(
                "Subject", _fill_strict(self._subject, fields, email, "text")
            )
        if self._unsubscribe_dynamic:
            values[_UNSUBSCRIBE] = _list_unsubscribe(
                [_fill_strict(link, fields, email, "url") for link in self._unsubscribe]
            )
        for ph, context, last in self._values:
            values.append(_qp_value(escape(_strict(ph, fields, email), context), last))
        values += self._constants
        return b"".join(self._pick(values))


# ---------------------------------------------------------------------------
# Checking before sending


def variant_for(variants: Iterable[Variant], recipient: Recipient) -> list[Variant]:
    """The variants a recipient may get: the one for exactly their lists, else
    the one for everyone, else every variant naming one of their lists."""
    variants = list(variants)
    lists = frozenset(recipient.lists)
    for wanted in (lists, frozenset()):
        exact = [v for v in variants if v.audiences == wanted]
        if exact:
            return exact
    return [v for v in variants if v.audiences & lists] or variants


@dataclass
class _Needs:
    required: tuple[str, ...]  # fields used somewhere without a default
    in_headers: tuple[str, ...]  # fields whose values go into a header


def _needs(variant: Variant, config: Config | None) -> _Needs:
    texts = [variant.subject, variant.html, variant.text]
    header_texts = [variant.subject]
    if config is not None and config.unsubscribe:
        texts.append(config.unsubscribe)
    required: dict[str, None] = {}
    for text in texts:
        for _, ph in find(text):
            if ph.default is None:
                required[ph.field] = None
    in_headers = {ph.field: None for text in header_texts for _, ph in find(text)}
    return _Needs(tuple(required), tuple(in_headers))


def _lines(lines: list[int], limit: int = 10) -> str:
    numbers = [str(line) for line in lines if line]
    if not numbers:
        return "no line number"
    shown = ", ".join(numbers[:limit])
    if len(numbers) > limit:
        shown += f" and {len(numbers) - limit} more"
    return ("line " if len(numbers) == 1 else "lines ") + shown


def check_fields(
    variants: Iterable[Variant],
    recipients: Iterable[Recipient],
    *,
    config: Config | None = None,
    pick: Callable[[Recipient], Iterable[Variant]] | None = None,
) -> list[Problem]:
    """Every recipient who would break a message, found before anything is sent.

    A placeholder without a default whose field a recipient lacks (or has
    empty) is an error naming the field and the CSV rows; so is a line break
    in a value that would go into a header (the name, or a field used in the
    subject). ``pick`` says which variants a recipient gets (default:
    ``variant_for``). Pass ``config`` to check placeholders in its unsubscribe
    address too.
    """
    variants = list(variants)
    needs = {id(v): _needs(v, config) for v in variants}
    choose = pick or (lambda r: variant_for(variants, r))
    # (kind, field, file) -> the lines of that file concerned
    found: dict[tuple[str, str, str], set[int]] = {}

    def report(kind: str, field: str, r: Recipient) -> None:
        for file, line in r.rows or ((f"<{r.email}>", 0),):
            found.setdefault((kind, field, file), set()).add(line)

    for r in recipients:
        fields = r.fields
        required: dict[str, None] = {}
        in_headers: dict[str, None] = {}
        for v in choose(r):
            need = needs.get(id(v)) or _needs(v, config)
            required.update(dict.fromkeys(need.required))
            in_headers.update(dict.fromkeys(need.in_headers))
        for field in required:
            if not fields.get(field):
                report("missing", field, r)
        if "\r" in r.name or "\n" in r.name:
            report("broken", "name", r)
        for field in in_headers:
            value = fields.get(field) or ""
            if "\r" in value or "\n" in value:
                report("broken", field, r)
        if not ASCII_ADDRESS.fullmatch(r.email):
            report("address", "email", r)

    problems: list[Problem] = []
    for (kind, field, file), numbers in found.items():
        lines = sorted(numbers)
        where = _lines(lines)
        first = lines[0] or None
        if kind == "missing":
            message = (
                f"no value for '{field}' ({where}), but the issue uses "
                f"{{{{ {field} }}}} without a default"
            )
            hint = (
                f"fill in the '{field}' column for these rows, or give the placeholder "
                f'a default: {{{{ {field} | default("…") }}}}'
            )
        elif kind == "broken":
            message = f"'{field}' has a line break in it ({where}), and it would go into a header"
            hint = f"put the '{field}' value on one line"
        else:
            message = f"the address cannot go into a mail header ({where})"
            hint = "use a plain ASCII address such as name@example.org"
        problems.append(Problem(file, first, None, message, hint))
    return problems
