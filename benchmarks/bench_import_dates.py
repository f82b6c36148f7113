"""Dates in briefings: the importer's hand-written rules (sender/importer/dates.py) against
dateparser's search_dates, on the forms briefings use and on sentences with no date.

Run by hand: .venv/bin/pip install dateparser && .venv/bin/python benchmarks/bench_import_dates.py
It prints how many each reads right, how many dates each finds where there is none,
and the time per line. dateparser is not a dependency; this is why.
"""

from __future__ import annotations

import datetime as dt
import time

from sender.importer.dates import _day_month, _find_date

REFERENCE = dt.datetime(2025, 9, 30)  # the email's date, for a day and month without a year

# (a title or a line under it, the date it means)
CASES = [
    ("Steve Kay's Blogpost - 13 February 2025", dt.date(2025, 2, 13)),
    ("Staff briefing – 3 October", dt.date(2025, 10, 3)),
    ("Attendance: what you need to know – Thursday 5th March 2026", dt.date(2026, 3, 5)),
    ("Inclusion update – w/c 6 October", dt.date(2025, 10, 6)),
    ("Director's Update – 14 November 2025", dt.date(2025, 11, 14)),
    ("Finance Update – 9 January 2026", dt.date(2026, 1, 9)),
    ("Schools Bulletin, 12/09/2025", dt.date(2025, 9, 12)),
    ("Briefing 2025-10-17", dt.date(2025, 10, 17)),
    ("Update for October 3rd", dt.date(2025, 10, 3)),
    ("Friday 10th of October 2025", dt.date(2025, 10, 10)),
    ("Heads' briefing: 1st Oct", dt.date(2025, 10, 1)),
    ("September 30, 2025 update", dt.date(2025, 9, 30)),
]

# Lines with no date in them: a date found here is wrong.
NO_DATE = [
    "May I thank everyone who came to the open evening.",
    "We march on with the new curriculum this term.",
    "Governors' Newsletter – Spring Term 2026",
    "Why does attendance matter so much?",
    "Three family hubs open in Northfield, Eastgate and the city centre.",
    "The review has finished and the report is on the website.",
    "Year 7 pupils will get their passes before half term.",
    "Key dates for SEND reviews",
]


def hand(text: str) -> dt.date | None:
    found = _find_date(text)
    if found:
        return found[0]
    partial = _day_month(text)
    if partial:
        (day, month), _m = partial
        options = [dt.date(y, month, day) for y in (2024, 2025, 2026)]
        return min(options, key=lambda d: abs((d - REFERENCE.date()).days))
    return None


def parser(text: str) -> dt.date | None:
    from dateparser.search import search_dates

    found = search_dates(
        text,
        languages=["en"],
        settings={"DATE_ORDER": "DMY", "RELATIVE_BASE": REFERENCE, "PREFER_DATES_FROM": "future"},
    )
    return found[0][1].date() if found else None


def main() -> None:
    for name, read in (("hand-written rules", hand), ("dateparser.search_dates", parser)):
        read("warm up 1 May 2025")  # dateparser loads its language data on first use
        start = time.perf_counter()
        right = sum(read(text) == want for text, want in CASES)
        wrong = [text for text, want in CASES if read(text) != want]
        false = [text for text in NO_DATE if read(text) is not None]
        calls = 2 * len(CASES) + len(NO_DATE)
        ms = (time.perf_counter() - start) * 1000 / calls
        print(
            f"{name:26} {right}/{len(CASES)} right, {len(false)}/{len(NO_DATE)} dates "
            f"found where there is none, {ms:.2f} ms a line"
        )
        for text in wrong:
            print(f"    wrong: {text!r} -> {read(text)}")
        for text in false:
            print(f"    no date, but found: {text!r} -> {read(text)}")


if __name__ == "__main__":
    main()
