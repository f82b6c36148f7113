"""Reading the file: the bytes checked (.docx, text, or the wrong file), decoded, and
handed to a reader; ``read_briefing`` is the entry point.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from pathlib import Path
from typing import Literal

from .envelope import strip_text
from .mail import eml_blocks, msg_blocks
from .model import BriefingError, Draft, Envelope
from .structure import _structure
from .text import _text_blocks
from .word import _docx_blocks

MAX_BYTES = 50 * 1024 * 1024  # a briefing is far smaller; this is the wrong file


def read_briefing(path: Path, *, display: str | None = None) -> Draft:
    """Read a .txt, .docx, .eml or .msg briefing into a Draft; raise BriefingError if it
    cannot be."""
    name = display or str(path)
    try:
        if path.is_dir():
            raise BriefingError(f"{name} is a folder, not a briefing file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise BriefingError(f"{name} not found; check the name and the folder") from None
    except OSError as exc:
        raise BriefingError(f"{name} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BriefingError(
            f"{name} is {len(data) // (1024 * 1024)} MB, far more than a briefing; "
            "is it the right file?"
        )
    if not data.strip():
        raise BriefingError(f"{name} is empty; there is nothing to import")
    suffix = path.suffix.lower()
    warnings: list[str] = []
    kind = _sniff(data, name, suffix)
    env = Envelope()
    if kind == "msg":
        blocks, images, env = msg_blocks(data, name)
    elif kind == "eml":
        blocks, images, env = eml_blocks(data, name)
    elif kind == "docx":
        if suffix != ".docx":
            warnings.append(f"{name} is a Word document (.docx) by its contents; read it as one")
        # Pictures that are not PNG, JPEG, GIF or WebP by their bytes are left out, with a
        # CHECK note where they were (sections.py).
        blocks, images, more = _docx_blocks(data, name)
        warnings += more
    else:
        if suffix == ".docx":
            warnings.append(
                f"{name} is not a Word document but plain text; read it as text "
                "(rename it to .txt to avoid this warning)"
            )
        text, more = _decode(data, name)
        warnings += more
        blocks, images = _text_blocks(strip_text(text.replace("\r\n", "\n"), env)), []
    if not any(b.plain.strip() or b.items or b.quote for b in blocks):
        raise BriefingError(f"{name} has no text to import")
    draft = _structure(blocks, name, images, env)
    draft.warnings = warnings + draft.warnings
    return draft


_MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF", "a PDF; open it, copy the text into a .txt file (or save it as Word .docx)"),
    (
        b"\xd0\xcf\x11\xe0",
        "an old Word (.doc) or Office file; open it in Word and Save As 'Word Document (.docx)'",
    ),
    (b"{\\rtf", "a Rich Text (.rtf) file; open it in Word and Save As 'Word Document (.docx)'"),
    (b"\x89PNG", "a picture (PNG), not a briefing"),
    (b"\xff\xd8\xff", "a picture (JPEG), not a briefing"),
    (b"GIF8", "a picture (GIF), not a briefing"),
]


# An Outlook message is an OLE file like an old .doc: its streams are named __substg1.0_….
_MSG_STREAM = "__substg1.0_".encode("utf-16-le")


# A saved email starts with its headers; these are never the first line of a briefing.
_EML_HEADER = re.compile(
    rb"^(?:Received|Return-Path|MIME-Version|Message-ID|Content-Type|X-[\w-]+|DKIM-Signature"
    rb"|Delivered-To|Authentication-Results):",
    re.I | re.M,
)


def _sniff(data: bytes, name: str, suffix: str = "") -> Literal["docx", "text", "eml", "msg"]:
    if data.startswith(b"\xd0\xcf\x11\xe0") and _MSG_STREAM in data:
        return "msg"
    head = data[:4096].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    if suffix == ".eml" or (_EML_HEADER.search(head) and re.search(rb"^From:", head, re.I | re.M)):
        return "eml"
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise BriefingError(f"{name} is {what}")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = set(z.namelist())
                mimetype = (
                    z.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
                )
        except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, ValueError):
            raise BriefingError(
                f"{name} is a damaged zip file, not a Word document we can read; "
                "open it in Word and save it again as .docx"
            ) from None
        if "word/document.xml" in names:
            return "docx"
        if "opendocument" in mimetype:
            raise BriefingError(
                f"{name} is an OpenDocument (.odt) file; save it as 'Word Document (.docx)' first"
            )
        raise BriefingError(
            f"{name} is a zip file of something else, not a Word document "
            "(it holds no word/document.xml); open the briefing in Word and save it as .docx"
        )
    return "text"


def _decode(data: bytes, name: str) -> tuple[str, list[str]]:
    """Text from bytes: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 with a warning."""
    warnings: list[str] = []
    text: str | None = None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise BriefingError(f"{name} says it is UTF-16 text but is not") from None
    elif b"\x00" in data[:4096]:
        even, odd = data[0:4096:2], data[1:4096:2]
        for zeros, codec in ((even, "utf-16-be"), (odd, "utf-16-le")):
            if zeros.count(0) > 0.4 * len(zeros):
                try:
                    text = data.decode(codec)
                except UnicodeDecodeError:
                    text = None
                break
        if text is None:
            raise BriefingError(
                f"{name} is not text (it looks like a binary file); "
                "import a .txt or a Word .docx briefing"
            )
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            try:
                text = data.decode("cp1252")
                codec = "Windows-1252 (Western European)"
            except UnicodeDecodeError:
                text = data.decode("latin-1")
                codec = "Latin-1"
            warnings.append(
                f"{name} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
                f"read it as {codec}: check quotes, dashes and accented letters"
            )
    controls = sum(
        1 for c in text if (ord(c) < 32 and c not in "\t\n\r\f\v") or 0x7F <= ord(c) < 0xA0
    )
    if controls > max(2, len(text) // 100):
        raise BriefingError(
            f"{name} is not text (it looks like a binary file); "
            "import a .txt or a Word .docx briefing"
        )
    return text, warnings
