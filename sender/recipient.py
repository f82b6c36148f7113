"""The hand-off between lists and message: one person, and what makes two the same."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

NAME_KEYS = ("name", "full_name", "display_name")
FIRST_KEYS = ("first_name", "firstname", "forename", "given_name")
LAST_KEYS = ("last_name", "lastname", "surname", "family_name")


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

    @property
    def audiences(self) -> frozenset[str]:
        return frozenset(self.lists)


def address_key(email: str) -> str:
    """What two addresses must share to be the same person: the case-folded address."""
    return email.casefold()


def display_name(fields: Mapping[str, str]) -> str:
    """The To: name: a ``name`` column, else first and last name, else ''."""
    for key in NAME_KEYS:
        if fields.get(key):
            return fields[key]
    first = next((fields[k] for k in FIRST_KEYS if fields.get(k)), "")
    last = next((fields[k] for k in LAST_KEYS if fields.get(k)), "")
    return " ".join(part for part in (first, last) if part)
