"""Text cleaned up, and lines judged by their shape: a title, a heading, a short line,
a numbered paragraph. Shared by both readers and the structuring pass.
"""

from __future__ import annotations

import re

from .markdown import _URL

_NUMBERED = re.compile(r"^\s*(?P<n>\d{1,2})[.)]\s+(?P<text>\S.*)$")


# A numbered heading may also be written "1 - Adoption" (or "1 – ", "1: ").
_NUMBERED_HEAD = re.compile(r"^\s*(?P<n>\d{1,2})(?:[.)]|\s*[-–—:])\s+(?P<text>\S.*)$")


def _clean(text: str) -> str:
    """Line breaks made plain, characters YAML cannot hold removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2029", "\n\n").replace("\u2028", "\n").replace("\x85", "\n")
    text = text.replace("\f", "\n\n").replace("\v", "\n").replace("\ufeff", "")
    return re.sub(r"[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "", text)


def _space(text: str) -> str:
    """Whitespace (non-breaking spaces and tabs too) made single spaces."""
    return re.sub(r"\s+", " ", text).strip()


def _short(line: str, words: int = 10, chars: int = 80) -> bool:
    return len(line) <= chars and len(line.split()) <= words


_MINOR = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "of", "on"}
    | {"onto", "or", "the", "to", "with", "via", "vs", "per", "nor", "up", "over", "than"}
    | {"&", "–", "—", "-", "and/or"}
)


def _title_case(text: str) -> bool:
    words = [w for w in text.split() if any(c.isalpha() for c in w)]
    if not words:
        return False
    for i, w in enumerate(words):
        core = w.lstrip("\"'“‘(«[")
        if not core:
            continue
        if i > 0 and core.lower().strip(",.;:!?…’'\")") in _MINOR:
            continue
        if not (core[0].isupper() or core[0].isdigit()):
            return False
    return True


def _title_shape(text: str) -> bool:
    """One line of at most 20 words: the title (a long first line is a paragraph)."""
    text = _space(text)
    return bool(text) and len(text) <= 150 and len(text.split()) <= 20


def _heading_shape(text: str, max_words: int = 12) -> bool:
    """Short, one line, not a sentence: could be a heading."""
    text = text.strip()
    if not text or "\n" in text or len(text) > 100 or len(text.split()) > max_words:
        return False
    if text.endswith(("...", "…")):
        pass
    elif text[-1] in ".,;:-–—(":
        return False
    return not (re.search(r"[.!?]\s+[A-Z]", text) or _URL.search(text))
