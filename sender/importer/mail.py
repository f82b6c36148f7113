"""A saved email (.eml) or Outlook message (.msg) -> blocks, pictures and the Envelope.

The HTML part is preferred and goes through the same path as Word (word.html_blocks):
its inline pictures (``cid:``) are saved like Word's, quoted earlier messages (Gmail's
gmail_quote, Outlook's reply header, <blockquote type="cite">) are cut from the tree,
and envelope.strip_blocks takes out what is left of what the email added. An email with
only a plain-text part goes through the text path. Subject, Date and From go into the
Envelope, used when the body does not say otherwise.

.msg files are read with extract-msg, an optional extra: pip install -e '.[msg]'.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from .envelope import header_date, sender_name, strip_blocks, strip_text, subject_title
from .model import Block, BriefingError, Envelope, Picture
from .text import _text_blocks
from .word import _Node, _tree, _walk, html_blocks

# What mail programs put around a quoted earlier message, by class or id.
_QUOTED_CLASS = re.compile(r"\b(gmail_quote|gmail_attr|moz-cite-prefix|yahoo_quoted)\b")
_QUOTED_ID = re.compile(r"^(divRplyFwdMsg|appendonsend|x_divRplyFwdMsg|mail-editor-reference)")
_SIGNATURE_CLASS = re.compile(r"\b(gmail_signature)\b")


def eml_blocks(data: bytes, name: str) -> tuple[list[Block], list[Picture], Envelope]:
    try:
        msg = BytesParser(policy=email.policy.default).parsebytes(data)
    except Exception as exc:  # a damaged message can fail anywhere in the parser
        raise BriefingError(f"{name} could not be read as an email ({exc})") from None
    assert isinstance(msg, EmailMessage)
    env = Envelope()
    env.subject = subject_title(str(msg.get("subject", ""))) or None
    env.date = header_date(str(msg.get("date", ""))) if msg.get("date") else None
    env.sender = sender_name(str(msg.get("from", ""))) if msg.get("from") else None
    inline: dict[str, tuple[bytes, str, str]] = {}
    for part in msg.walk():
        cid = str(part.get("content-id", "")).strip().strip("<>")
        if cid and part.get_content_maintype() == "image":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                inline[cid] = (payload, part.get_content_type(), part.get_filename() or "")
    body = msg.get_body(("html", "plain"))
    if body is None:
        raise BriefingError(f"{name} is an email with no text in it to import")
    try:
        content = body.get_content()
    except (LookupError, ValueError) as exc:  # an unknown charset, a broken encoding
        raise BriefingError(f"{name}: its text cannot be decoded ({exc})") from None
    if body.get_content_subtype() == "html":
        blocks, pictures = _html_body(str(content), inline, env)
    else:
        blocks, pictures = _text_blocks(strip_text(str(content), env)), []
    return blocks, pictures, env


def msg_blocks(data: bytes, name: str) -> tuple[list[Block], list[Picture], Envelope]:
    try:
        import extract_msg
    except ImportError:
        raise BriefingError(
            f"{name} is an Outlook message (.msg); reading it needs extract-msg: "
            "pip install -e '.[msg]' (or, in Outlook, save it as .eml, or copy its text "
            "into a .txt file)"
        ) from None
    try:
        msg: Any = extract_msg.openMsg(data)
    except Exception as exc:  # extract-msg raises many kinds for a damaged file
        raise BriefingError(
            f"{name} could not be read as an Outlook message ({type(exc).__name__}: {exc})"
        ) from None
    try:
        env = Envelope()
        env.subject = subject_title(str(msg.subject or "")) or None
        date = msg.date
        env.date = date if isinstance(date, dt.datetime) else None
        env.sender = sender_name(str(msg.sender or "")) if msg.sender else None
        inline: dict[str, tuple[bytes, str, str]] = {}
        for att in msg.attachments:
            cid = str(getattr(att, "cid", None) or getattr(att, "contentId", None) or "")
            payload = getattr(att, "data", None)
            if cid and isinstance(payload, bytes):
                inline[cid.strip("<>")] = (payload, str(att.mimetype or ""), str(att.name or ""))
        html = msg.htmlBody
        if html:
            text = html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html)
            blocks, pictures = _html_body(text, inline, env)
        else:
            blocks, pictures = _text_blocks(strip_text(str(msg.body or ""), env)), []
    finally:
        msg.close()
    return blocks, pictures, env


def _html_body(
    html: str, inline: dict[str, tuple[bytes, str, str]], env: Envelope
) -> tuple[list[Block], list[Picture]]:
    root = _tree(html)
    _cut_quoted(root, env)
    pictures: list[Picture] = []
    for node in _walk(root):
        if node.tag != "img":
            continue
        src = node.attrs.get("src", "")
        found = inline.get(src[4:]) if src.lower().startswith("cid:") else None
        if found is None:
            if src:
                env.leave_out("a picture the email only links to", src[:120])
            node.attrs["src"] = ""
            continue
        data, content_type, _filename = found
        alt = node.attrs.get("alt", "").strip() or None
        pictures.append(Picture(data, content_type, alt))
        node.attrs["src"] = f"picture:{len(pictures) - 1}"
    warnings: list[str] = []
    blocks = strip_blocks(html_blocks(root, warnings), env)
    env.notes += warnings
    return blocks, pictures


def _cut_quoted(node: _Node, env: Envelope) -> bool:
    """Remove quoted earlier messages from the tree; True once one was found, after which
    everything that follows it in the email is part of it."""
    kept: list[_Node | str] = []
    cut = False
    for child in node.children:
        if cut:
            text = child if isinstance(child, str) else child.text()
            if text.strip():
                env.leave_out("the rest of the quoted earlier message", text[:150])
            continue
        if isinstance(child, _Node):
            cls, ident = child.attrs.get("class", ""), child.attrs.get("id", "")
            if (
                (child.tag == "blockquote" and child.attrs.get("type") == "cite")
                or _QUOTED_CLASS.search(cls)
                or _QUOTED_ID.match(ident)
            ):
                env.leave_out("an earlier message quoted under the briefing", child.text()[:150])
                cut = True
                continue
            if _SIGNATURE_CLASS.search(cls):
                kept.append(child)  # a signature is read like any other sign-off
                continue
            if _cut_quoted(child, env):
                kept.append(child)
                cut = True
                continue
        kept.append(child)
    node.children = kept
    return cut
