"""The issue's date: a full date in or under the title; else a day and month there
("3 October", "w/c 2 March") with the year inferred; else the email's date; else a guess
from a term or month in the title and the years the text mentions; else today. Every
date that is not a full date written in the briefing is flagged.

Hand-written rules, not dateparser: on the forms briefings use, measured in
benchmarks/bench_import_dates.py, these read as many or more correctly, never take a
word such as "May" or "March" in a sentence for a date, and need no 20 MB dependency.
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


# A day and a month, no year: "3 October", "Thursday 5th March", "w/c 2 March", "October 3".
_DAY_MONTH = [
    re.compile(
        r"(?:\bw/?c\.?\s+|\bweek commencing\s+)?"
        + _WEEKDAY
        + r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
        + _MONTH
        + r"(?![\w.]|,?\s+\d{4})",
        re.I,
    ),
    re.compile(
        r"(?:\bw/?c\.?\s+)?"
        + _WEEKDAY
        + r"\b"
        + _MONTH
        + r"\s+(\d{1,2})(?:st|nd|rd|th)?\b(?!,?\s+\d{4})",
        re.I,
    ),
]


_TERM = re.compile(r"\b(Autumn|Spring|Summer)\s+[Tt]erm,?\s+(\d{4})\b", re.I)


_TERM_MONTH = {"autumn": 9, "spring": 1, "summer": 4}


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


def _without(text: str, m: re.Match[str]) -> str:
    """The title without the date matched at its start or end (kept when in the middle)."""
    before, after = text[: m.start()].rstrip(_SEPARATORS), text[m.end() :].lstrip(_SEPARATORS)
    if not after and before:
        return before
    if not before and after:
        return after
    return text


def _title_and_date(
    text: str, draft: Draft, reference: dt.date | None = None, years: str = ""
) -> tuple[str, bool]:
    """The title without a date at its start or end; True when a date was found in it: a
    full date, or a day and month whose year is inferred (and flagged) from ``reference``
    (the email's date) or the years in ``years`` (the text)."""
    text = _space(text)
    found = _find_date(text)
    if found:
        d, m = found
        draft.date = d
        draft.recognised["date"] = f"{d.isoformat()} (in the title)"
        return _without(text, m), True
    partial = _day_month(text)
    if partial:
        (day, month), m = partial
        _infer_year(draft, day, month, m.group().strip(), "the title", reference, years)
        return _without(text, m), True
    return text, False


def _day_month(text: str) -> tuple[tuple[int, int], re.Match[str]] | None:
    """A day and a month without a year: ((day, month), the match)."""
    for kind, pattern in enumerate(_DAY_MONTH):
        for m in pattern.finditer(text):
            day, month = (m.group(1), m.group(2)) if kind == 0 else (m.group(2), m.group(1))
            number = _MONTHS[month.lower().rstrip(".")]
            try:
                dt.date(2000, number, int(day))  # a leap year: 29 February is a day
            except ValueError:
                continue
            return (int(day), number), m
    return None


def _infer_year(
    draft: Draft,
    day: int,
    month: int,
    written: str,
    where: str,
    reference: dt.date | None,
    years: str,
) -> None:
    """The year of a day and month: the one nearest the email's date; else the year the
    text mentions most; else the one nearest today. Always flagged."""
    counted = Counter(int(y) for y in _YEAR.findall(years))
    if reference is not None:
        base, why = reference, f"the year nearest the email's date ({reference.isoformat()})"
    elif counted:
        year = max(counted, key=lambda y: (counted[y], y))
        base, why = dt.date(year, 7, 1), f"{year}, the year the text mentions most"
    else:
        base, why = dt.date.today(), "the year nearest today (the text names no year)"
    options = []
    for year in (base.year - 1, base.year, base.year + 1):
        try:
            options.append(dt.date(year, month, day))
        except ValueError:  # 29 February in a year without one
            continue
    if reference is None and counted:
        options = [d for d in options if d.year == base.year] or options
    draft.date = min(options, key=lambda d: abs((d - base).days))
    draft.note(
        "date",
        f"the briefing says '{written}' in {where} but not the year; {why} is used. "
        "Check it is the date it goes out",
    )
    draft.recognised["date"] = f"{draft.date.isoformat()} (the year inferred: check it)"


def _guess_date(draft: Draft, blocks: list[Block], sent: dt.date | None = None) -> None:
    """No date at the top: the email's date, a term or a month in the title (with years
    in the text), or today."""
    text = " ".join(b.plain for b in blocks)
    if sent is not None:
        draft.date = sent
        draft.note(
            "date",
            "the date the email was sent; write the date the issue goes out if it differs",
        )
        draft.recognised["date"] = f"{sent.isoformat()} (the email's date)"
        return
    term = _TERM.search(draft.title) or _TERM.search(text)
    if term:
        draft.date = dt.date(int(term.group(2)), _TERM_MONTH[term.group(1).lower()], 1)
        draft.note(
            "date",
            f"the briefing names the term ('{term.group()}') but no day; the 1st of the "
            "term's first month is used. Write the date it goes out, as YYYY-MM-DD",
        )
        draft.recognised["date"] = f"{draft.date.isoformat()} (a guess from the term: check it)"
        return
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
