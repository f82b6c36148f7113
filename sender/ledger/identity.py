"""Which issue a file is: an issue is known by what it is, not only by its file name.

Renaming a file after a partial send resumes it; next week's issue saved
over the same file (another date) is a new issue; fixing a typo in the title
between a partial send and its resume is the same issue. Where it cannot be
told — the date changed in a file whose earlier send is unfinished — the
caller must ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .records import IssueRecord


class _Known(Protocol):
    def issues(self) -> list[IssueRecord]: ...
    def unfinished(self, issue: str) -> int: ...


@dataclass(frozen=True)
class Identified:
    record: IssueRecord  # with this file and title
    new: bool  # never sent before
    was: IssueRecord | None = None  # as the ledger knew it, when the file or title changed


class Unclear(Exception):
    """The file's date changed while its earlier send is unfinished: same issue, or new?"""

    def __init__(self, earlier: IssueRecord, unfinished: int, proposed: IssueRecord) -> None:
        super().__init__(earlier.key)
        self.earlier = earlier
        self.unfinished = unfinished
        self.proposed = proposed  # the new issue it would otherwise be


def identify(
    ledger: _Known,
    *,
    slug: str,
    file: str,
    date: str,
    title: str,
    same_as: str | None = None,
    new_issue: bool = False,
) -> Identified:
    """The ledger's issue for this file, or a new one. Raises Unclear, or KeyError
    for a ``same_as`` the ledger does not know."""
    known = ledger.issues()
    fresh = IssueRecord(_free_key(known, slug, date), file, date, title)
    if new_issue:
        return Identified(fresh, True)
    if same_as is not None:
        earlier = next((r for r in known if r.key == same_as), None)
        if earlier is None:
            raise KeyError(same_as)
        return Identified(IssueRecord(earlier.key, file, date, title), False, earlier)
    same_day = [
        r for r in known if r.date == date and (r.title == title or _same_file(r, file, slug))
    ]
    if same_day:
        earlier = next((r for r in same_day if _same_file(r, file, slug)), same_day[0])
        changed = (earlier.file, earlier.title) != (file, title)
        return Identified(
            IssueRecord(earlier.key, file, date, title), False, earlier if changed else None
        )
    for earlier in (r for r in known if _same_file(r, file, slug)):
        left = ledger.unfinished(earlier.key)
        if left:
            raise Unclear(earlier, left, fresh)
    return Identified(fresh, True)


def _same_file(record: IssueRecord, file: str, slug: str) -> bool:
    # Ledgers from before identities knew an issue by its slug alone.
    return record.file == file if record.file else record.key == slug


def _free_key(known: list[IssueRecord], slug: str, date: str) -> str:
    taken = {r.key for r in known}
    if slug not in taken:
        return slug
    key = f"{slug}-{date}"
    n = 2
    while key in taken:
        key, n = f"{slug}-{date}-{n}", n + 1
    return key


def known_as(
    ledger: _Known, *, file: str, slug: str, facts: dict[str, str] | None
) -> IssueRecord | None:
    """The issue the ledger knows this file as, for reading (nothing is decided or written).

    ``facts`` (date, title, slug) come from the file when it can be read."""
    if facts is not None:
        try:
            found = identify(
                ledger, slug=facts["slug"], file=file, date=facts["date"], title=facts["title"]
            )
        except Unclear as unclear:
            return unclear.earlier
        return None if found.new else found.record
    known = ledger.issues()
    return next((r for r in known if _same_file(r, file, slug)), None)
