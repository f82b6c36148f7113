"""recipients/*.csv -> Recipient: validation, dedupe, suppression, segments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipient:
    """One person, once, however many lists they are on.

    ``email`` is normalised (email-validator's ``normalized``, ASCII).
    ``name`` is the display name for the To header ('' when unknown).
    ``fields`` holds every column of their rows (lower-case keys, first list
    named wins on conflict), including ``email``; placeholders read it.
    ``lists`` are the lists they are on, in the order the lists were named.
    ``rows`` says where they came from: (file, line) per row merged.
    """

    email: str
    name: str
    fields: Mapping[str, str]
    lists: tuple[str, ...]
    rows: tuple[tuple[str, int], ...] = field(default=())
