"""The issue's date: a full date in or under the title, else a guess from a month in the
title and the years the text mentions, else today.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

from .model import Block, Draft
from .shapes import _space

_MONTHS = {
    m.lower(): i
    for i, names in enumerate(
        [
            ("January", "Jan"),
            ("February", "Feb"),
            ("March", "Mar"),
            ("April", "Apr"),
            ("May",),
            ("June", "Jun"),
            ("July", "Jul"),
            ("August", "Aug"),
            ("September", "Sep", "Sept"),
            ("October", "Oct"),
            ("November", "Nov"),
            ("December", "Dec"),
        ],
        start=1,
    )
    for m in names
}


_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"


_WEEKDAY = r"(?:(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day,?\s+)?"


_DATES = [
    (
        re.compile(
            _WEEKDAY + r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+(\d{4})\b",
            re.I,
        ),
        "dmy",
    ),
    (
        re.compile(_WEEKDAY + r"\b" + _MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I),
        "mdy",
    ),
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), "iso"),
    (re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b"), "dmy-num"),
]


_MONTH_ONLY = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
    r"(?:\s+(\d{4}))?\b"
)


_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")


_SEPARATORS = " \t-–—|:,;·/"


def _find_date(text: str) -> tuple[dt.date, re.Match[str]] | None:
    for pattern, kind in _DATES:
        for m in pattern.finditer(text):
            try:
                if kind == "dmy":
                    d = dt.date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
                elif kind == "mdy":
                    d = dt.date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
                elif kind == "iso":
                    d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                else:
                    d = dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            except ValueError:
                continue
            return d, m
    return None


def _title_and_date(text: str, draft: Draft) -> tuple[str, bool]:
    """The title without a date at its start or end; True when a full date was found."""
    text = _space(text)
    found = _find_date(text)
    if found:
        d, m = found
        before, after = text[: m.start()].rstrip(_SEPARATORS), text[m.end() :].lstrip(_SEPARATORS)
        if not after and before:
            text = before
        elif not before and after:
            text = after
        draft.date = d
        draft.recognised["date"] = f"{d.isoformat()} (in the title)"
        return text, True
    return text, False


def _guess_date(draft: Draft, blocks: list[Block]) -> None:
    """No full date at the top: a month in the title, years in the text, or today."""
    text = " ".join(b.plain for b in blocks)
    month = _MONTH_ONLY.search(draft.title)
    years = Counter(int(y) for y in _YEAR.findall(text))
    if month:
        number = _MONTHS[month.group(1).lower()]
        if month.group(2):
            year, why = int(month.group(2)), f"{month.group(2)} is in the title"
        elif years:
            year = max(years, key=lambda y: (years[y], y))
            why = f"{year} is the year the text mentions most"
        else:
            year, why = dt.date.today().year, "the text names no year, so this year is used"
        draft.date = dt.date(year, number, 1)
        draft.note(
            "date",
            f"the briefing says '{month.group()}' but not the day"
            + ("" if month.group(2) else " or the year")
            + f"; {why}. Write the date it goes out, as YYYY-MM-DD",
        )
        draft.recognised["date"] = f"{draft.date.isoformat()} (a guess: check it)"
        return
    draft.date = dt.date.today()
    draft.note("date", "no date found in the briefing; today's date is used. Write the right one")
    draft.recognised["date"] = f"{draft.date.isoformat()} (today: none in the briefing)"
