"""The hand-off between lists and message: one person, and what makes two the same.

A send of 100,000 people holds 100,000 of these for its whole length, so each is
kept small: slots, not a ``__dict__``; the columns' values in a tuple whose
names are shared by everyone read from the same columns; one tuple of list
names and one set of audiences per combination of lists, not one per person.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar, overload

NAME_KEYS = ("name", "full_name", "display_name")
FIRST_KEYS = ("first_name", "firstname", "forename", "given_name")
LAST_KEYS = ("last_name", "lastname", "surname", "family_name")

_T = TypeVar("_T")


class Fields(Mapping[str, str]):
    """A person's columns, read-only: field name -> value.

    The values are a tuple; the names and their positions are one dict shared
    by every person whose row had the same columns (see :func:`columns`)."""

    __slots__ = ("_at", "_values")

    def __init__(self, at: Mapping[str, int], values: tuple[str, ...]) -> None:
        self._at = at
        self._values = values

    @classmethod
    def of(cls, fields: Mapping[str, str]) -> Fields:
        """The same fields, held compactly (a ``Fields`` is returned as it is)."""
        if isinstance(fields, Fields):
            return fields
        return cls(columns(tuple(fields)), tuple(fields.values()))

    def __getitem__(self, key: str) -> str:
        return self._values[self._at[key]]

    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, /, default: str | _T) -> str | _T: ...
    def get(self, key: str, /, default: object = None) -> object:
        at = self._at.get(key)
        return default if at is None else self._values[at]

    def __contains__(self, key: object) -> bool:
        return key in self._at

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(dict(self))


@lru_cache(maxsize=4096)
def columns(names: tuple[str, ...]) -> Mapping[str, int]:
    """Each name's position: one dict per set of columns, shared (never changed)."""
    return {name: i for i, name in enumerate(names)}


@lru_cache(maxsize=4096)
def _audiences(lists: tuple[str, ...]) -> frozenset[str]:
    return frozenset(lists)


@dataclass(frozen=True, slots=True, init=False)
class Recipient:
    """One person, once, however many lists they are on.

    ``email`` is normalised (email-validator's ``normalized``, ASCII).
    ``name`` is the display name for the To header ('' when unknown).
    ``fields`` holds every column of their rows (lower-case keys, first list
    named wins on conflict), including ``email``; placeholders read it. It is
    read-only: to change a value, make a new Recipient (``dataclasses.replace``).
    ``lists`` are the lists they are on, in the order the lists were named.
    ``rows`` says where they came from: (file, line) per row merged.
    """

    email: str
    name: str
    fields: Mapping[str, str]
    lists: tuple[str, ...]
    rows: tuple[tuple[str, int], ...] = field(default=())

    def __init__(
        self,
        email: str,
        name: str,
        fields: Mapping[str, str],
        lists: Iterable[str],
        rows: Iterable[tuple[str, int]] = (),
    ) -> None:
        set_ = object.__setattr__  # frozen: the generated __setattr__ refuses
        set_(self, "email", email)
        set_(self, "name", name)
        set_(self, "fields", Fields.of(fields))
        set_(self, "lists", lists if isinstance(lists, tuple) else tuple(lists))
        set_(self, "rows", rows if isinstance(rows, tuple) else tuple(rows))

    @property
    def audiences(self) -> frozenset[str]:
        return _audiences(self.lists)


def address_key(email: str) -> str:
    """What two addresses must share to be the same person: the case-folded address.

    An address that is already case-folded is returned itself, not a copy."""
    folded = email.casefold()
    return email if folded == email else folded


def display_name(fields: Mapping[str, str]) -> str:
    """The To: name: a ``name`` column, else first and last name, else ''."""
    for key in NAME_KEYS:
        if fields.get(key):
            return fields[key]
    first = next((fields[k] for k in FIRST_KEYS if fields.get(k)), "")
    last = next((fields[k] for k in LAST_KEYS if fields.get(k)), "")
    return " ".join(part for part in (first, last) if part)
