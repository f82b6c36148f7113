"""The hand-off between render and message: one rendered audience set."""

from __future__ import annotations

from dataclasses import dataclass

from .audiences import audience_key
from .pictures import Picture


@dataclass(frozen=True)
class Variant:
    """HTML and text for one set of audiences, placeholders still in place.

    ``audiences`` empty means everyone (every section). Placeholders appear in
    ``subject``, ``html`` and ``text`` in canonical form (see placeholders.py)
    and are filled per recipient by the message stage.
    """

    slug: str
    audiences: frozenset[str]
    subject: str
    preheader: str | None
    html: str
    text: str
    fields: frozenset[str]  # placeholder field names used anywhere in this variant
    required: frozenset[str]  # those used at least once without a default
    pictures: tuple[Picture, ...] = ()  # the local pictures this version shows
    embedded: bool = False  # they travel as cid: parts of the message (``[images] mode``)

    @property
    def key(self) -> str:
        return audience_key(self.audiences)
