"""recipients/*.csv -> Recipient: validation, dedupe, suppression, segments.

A workspace keeps one CSV file per list in ``recipients/``; the list's name is
the file's stem. ``recipients/suppressed.csv`` is not a list: anyone in it is
never sent to, whatever list they are on.

The files come from spreadsheets, so we accept what spreadsheets export: UTF-8
with or without a byte-order mark, Windows-1252 (with a warning), comma,
semicolon or tab separators, CRLF or LF line ends, stray spaces, blank lines
and the usual spellings of the email column. Everything else that is wrong is
reported as a :class:`~sender.problems.Problem` naming the file and the
physical line, and the reading goes on, so one pass shows every bad row.

This module never prints and never raises for bad rows: it returns reports.
Only :func:`select` raises (:class:`~sender.problems.ProblemsError`), when a
list that was asked for does not exist.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from .addresses import Addresses, EmailNotValidError
from .problems import Problem, ProblemsError, Severities, Severity, did_you_mean
from .recipient import Fields, Recipient, address_key, columns, display_name

if TYPE_CHECKING:
    from .ledger import Suppression

SUPPRESSED = "suppressed"
MAX_FIELD = 1000
LONG_NAME = 120  # longer than any real name: probably a cell pasted into the wrong column
UTF8 = "utf-8"
CP1252 = "windows-1252"

HEADER_HINT = "the first row must name the columns, one of them 'email'"
CP1252_WARNING = (
    "file is in Windows-1252, not UTF-8; read it as such; save as 'CSV UTF-8' to silence this"
)

# Header spellings of the email column, compared with case, spaces, '-' and
# '_' removed: email, Email, E-mail, e_mail, Email Address, email_address, ...
_EMAIL_HEADERS = ("email", "emailaddress")
_SEPARATORS = (",", ";", "\t")
_NOT_WORD = re.compile(r"\W+")
_NOT_ALNUM = re.compile(r"[\W_]+")


@dataclass
class ListReport(Severities):
    """What reading one CSV file found.

    Every data row (blank lines and the header aside) is counted exactly once,
    so ``rows == valid + invalid + duplicates + suppressed``.
    """

    name: str
    path: Path
    file: str  # the path as shown in problems, relative to the workspace
    recipients: list[Recipient] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0
    invalid: int = 0
    duplicates: int = 0
    suppressed: int = 0
    encoding: str = UTF8
    columns: list[str] = field(default_factory=list)  # field keys, 'email' first

    @property
    def valid(self) -> int:
        return len(self.recipients)

    def _problems(self) -> list[Problem]:
        return self.problems


@dataclass(frozen=True)
class Conflict:
    """Two lists give one person different values for a field; the first list's wins."""

    email: str
    field: str
    kept_list: str
    kept: str
    other_list: str
    other: str

    def __str__(self) -> str:
        return (
            f"{self.email}: {self.field} is '{self.kept}' on {self.kept_list} "
            f"and '{self.other}' on {self.other_list}; using '{self.kept}'"
        )


@dataclass
class Selection(Severities):
    """The recipients of one or more lists, each person once.

    ``recipients`` are in order of first appearance (lists in the order named,
    rows in file order). ``problems`` holds those of suppressed.csv and of
    every list read; ``conflicts`` the fields on which a person's lists
    disagree (the list named first wins; an empty value is filled from a
    later list and is not a conflict).
    """

    names: list[str]
    recipients: list[Recipient]
    reports: dict[str, ListReport]
    suppressed: int  # addresses in suppressed.csv
    on_several: int
    conflicts: list[Conflict]
    problems: list[Problem]

    def _problems(self) -> list[Problem]:
        return self.problems


def list_names(recipients_dir: Path) -> list[str]:
    """The workspace's lists: the stems of ``recipients/*.csv``, sorted, without 'suppressed'."""
    if not recipients_dir.is_dir():
        return []
    return sorted(
        p.stem for p in recipients_dir.glob("*.csv") if p.is_file() and p.stem != SUPPRESSED
    )


def read_list(
    path: Path, root: Path, suppressed: set[str] | None = None, *, shared: _Shared | None = None
) -> ListReport:
    """Read one list; anyone whose address is in ``suppressed`` is dropped and counted.

    ``suppressed`` holds keys as made by :func:`address_key` (see
    :func:`read_suppressed`). ``root`` is the workspace, for the file names in
    problems. Lists read together share ``shared``: the addresses and domains
    already checked, and one copy of each value that repeats.
    """
    return _Reader(path, root, suppressed or set(), need_rows=True, shared=shared).read()


class _Shared:
    """What the lists of one reading share: checked addresses, repeated values."""

    def __init__(self) -> None:
        self.addresses = Addresses()
        self.values: dict[str, str] = {}  # each value once: 'Team 3' on 1,000 rows is one string


def read_suppressed(
    recipients_dir: Path, root: Path, shared: _Shared | None = None
) -> tuple[set[str], list[Problem]]:
    """The keys of everyone in ``recipients/suppressed.csv`` (none when it is missing).

    The file follows the rules of a list, but it may be empty or hold only its
    header. Its other columns (a reason, a date) are allowed and ignored.
    """
    path = recipients_dir / f"{SUPPRESSED}.csv"
    if not path.is_file():
        return set(), []
    report = _Reader(path, root, set(), need_rows=False, shared=shared).read()
    return {address_key(r.email) for r in report.recipients}, report.problems


def select(recipients_dir: Path, root: Path, names: Sequence[str]) -> Selection:
    """Read the named lists and merge them: one Recipient per person.

    A person on several lists gets ``lists`` in the order the lists were
    named and the fields of the first list named (blanks filled from later
    lists). Suppression always wins. Raises ProblemsError, before reading
    anything, when a name is not a list of this workspace; bad rows are not
    raised but returned in ``Selection.problems``.
    """
    known = list_names(recipients_dir)
    wanted: list[str] = []
    unknown: list[Problem] = []
    shown_dir = _shown(recipients_dir, root)
    for name in names:
        if name in wanted:
            continue
        if name == SUPPRESSED:
            unknown.append(
                Problem(
                    shown_dir,
                    None,
                    None,
                    "'suppressed' is not a list: anyone in suppressed.csv is never sent to",
                    _choices_hint(name, known),
                )
            )
        elif name not in known:
            unknown.append(
                Problem(
                    shown_dir,
                    None,
                    None,
                    f"there is no list named '{name}' (no {shown_dir}/{name}.csv)",
                    _choices_hint(name, known),
                )
            )
        else:
            wanted.append(name)
    if unknown:
        raise ProblemsError(unknown)

    shared = _Shared()
    suppressed, problems = read_suppressed(recipients_dir, root, shared)
    reports: dict[str, ListReport] = {}
    for name in wanted:
        report = read_list(recipients_dir / f"{name}.csv", root, suppressed, shared=shared)
        reports[name] = report
        problems.extend(report.problems)
    recipients, on_several, conflicts = _merge(reports)
    return Selection(
        names=wanted,
        recipients=recipients,
        reports=reports,
        suppressed=len(suppressed),
        on_several=on_several,
        conflicts=conflicts,
        problems=problems,
    )


def field_key(header: str) -> str:
    """A column's key for placeholders: 'First Name' -> 'first_name'."""
    return _NOT_WORD.sub("_", header.strip().lower()).strip("_")


def is_email_header(header: str) -> bool:
    return _NOT_ALNUM.sub("", header.lower()) in _EMAIL_HEADERS


# --------------------------------------------------------------------------- reading


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _choices_hint(name: str, known: Sequence[str]) -> str:
    if not known:
        return "there are no lists yet: add recipients/<name>.csv with an 'email' column"
    return did_you_mean(name, known) or f"the lists are: {', '.join(known)}"


class _CsvReader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _physical_lines(raw: BinaryIO) -> Iterator[bytes]:
    """Lines as text mode with newline='' (and so csv) counts them: CR, LF or CRLF end one."""
    for line in raw:
        if b"\r" in line:
            yield from line.splitlines(keepends=True)
        else:
            yield line


class _Stop(Exception):
    """The file cannot be read further; the problem is already recorded."""


class _Reader:
    """Reads one CSV file into a ListReport. One instance per file."""

    def __init__(
        self,
        path: Path,
        root: Path,
        suppressed: set[str],
        *,
        need_rows: bool,
        shared: _Shared | None = None,
    ) -> None:
        self.path = path
        self.suppressed = suppressed
        self.need_rows = need_rows  # a list needs rows; suppressed.csv may be empty
        self.report = ListReport(name=path.stem, path=path, file=_shown(path, root))
        self.seen: dict[str, int] = {}  # address key -> line of its first row
        self.unnamed_warned = False
        self.undecodable: set[int] = set()  # lines with bytes read as U+FFFD
        self.shared = shared or _Shared()
        self.lists = (self.report.name,)  # one tuple for everyone on this list
        # Set by the header: the field names in column order (shared by every
        # person on the list), and each column's place among them (-1: ignored).
        self.names: tuple[str, ...] = ()
        self.places: list[int] = []
        self.at: Mapping[str, int] = {}
        self.at_email = 0

    # -- problems

    def _add(self, line: int | None, message: str, hint: str | None, severity: Severity) -> None:
        self.report.problems.append(Problem(self.report.file, line, None, message, hint, severity))

    def error(self, line: int | None, message: str, hint: str | None = None) -> None:
        self._add(line, message, hint, "error")

    def warning(self, line: int | None, message: str, hint: str | None = None) -> None:
        self._add(line, message, hint, "warning")

    # -- the whole file

    def read(self) -> ListReport:
        try:
            encoding = self._encoding()
            self.report.encoding = CP1252 if encoding == CP1252 else UTF8
            with self.path.open(encoding=encoding, errors="replace", newline="") as stream:
                self._read_stream(stream)
        except _Stop:
            pass
        except OSError as exc:
            self.error(None, f"cannot be read: {exc.strerror or exc}")
        # In line order (stable: a row's problems keep their order).
        self.report.problems.sort(key=lambda p: p.line or 0)
        return self.report

    def _encoding(self) -> str:
        """UTF-8 (BOM or not) or Windows-1252, decided line by line before parsing.

        Reads the file once as bytes: cheap, and it lets the warning name the
        first line that is not UTF-8.
        """
        first_bad: int | None = None  # first line that is not UTF-8
        first_utf8: int | None = None  # first non-ASCII line that is UTF-8
        undecodable: list[int] = []
        with self.path.open("rb") as raw:
            head = raw.read(4)
            if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                self.error(
                    1,
                    "file is UTF-16 text ('Unicode Text'), not CSV in UTF-8",
                    "save it from the spreadsheet as 'CSV UTF-8 (Comma delimited)'",
                )
                raise _Stop
            raw.seek(3 if head.startswith(codecs.BOM_UTF8) else 0)
            for number, line in enumerate(_physical_lines(raw), 1):
                if line.isascii():
                    continue
                try:
                    line.decode(UTF8)
                except UnicodeDecodeError:
                    if first_bad is None:
                        first_bad = number
                    try:
                        line.decode(CP1252)
                    except UnicodeDecodeError:
                        undecodable.append(number)
                else:
                    if first_utf8 is None:
                        first_utf8 = number
        if first_bad is None:
            return "utf-8-sig"
        self.warning(first_bad, CP1252_WARNING)
        if first_utf8 is not None:
            self.warning(
                first_utf8,
                "this line looks like UTF-8 but the file is read as Windows-1252",
                "check its accented letters; save the whole file as 'CSV UTF-8'",
            )
        self.undecodable.update(undecodable)
        for number in undecodable:
            self.error(
                number,
                "this line has bytes that are neither UTF-8 nor Windows-1252; "
                "they are read as '\ufffd'",
                "save the file as 'CSV UTF-8'",
            )
        return CP1252

    def _read_stream(self, stream: Iterator[str]) -> None:
        # The header is the first line that is not blank; sniff its separator.
        skipped: list[str] = []
        header_line = ""
        for line in stream:
            if line.strip() and line.strip() != "\ufeff":
                header_line = line
                break
            skipped.append(line)
        if not header_line:
            if self.need_rows:
                self.error(1, "file is empty", HEADER_HINT)
            return
        # A BOM read as Windows-1252 (a UTF-8 file with one bad line) shows as 'ï»¿'.
        header_line = header_line.lstrip("\ufeff").removeprefix("ï»¿")
        counts = {sep: header_line.count(sep) for sep in _SEPARATORS}
        separator = max(_SEPARATORS, key=lambda sep: counts[sep]) if any(counts.values()) else ","
        reader = csv.reader(
            chain(skipped, [header_line], stream), delimiter=separator, skipinitialspace=True
        )
        try:
            self._read_rows(reader)
        except csv.Error as exc:
            self.error(
                reader.line_num + 1,
                f"could not read the rest of the file: {exc}",
                "open it in a spreadsheet and save it again as 'CSV UTF-8'",
            )

    def _read_rows(self, reader: _CsvReader) -> None:
        header: list[str] = []
        start = 1
        for values in reader:
            header = [v.strip() for v in values]
            if any(header):
                break
            start = reader.line_num + 1
        if not any(header):  # only empty cells
            if self.need_rows:
                self.error(1, "file is empty", HEADER_HINT)
            return
        header_at = start
        keys = self._header(header, header_at)

        data_rows = 0
        end = reader.line_num
        for values in reader:
            start, end = end + 1, reader.line_num
            if not any(v.strip() for v in values):
                continue  # blank line, or a row of empty cells
            data_rows += 1
            self._row(values, keys, start, end)
        if data_rows == 0 and self.need_rows:
            self.error(
                header_at,
                "there are no recipients below the header row",
                "add one row per person below the header",
            )

    def _header(self, header: list[str], line: int) -> list[str]:
        """Field keys per column: 'email' for the email column, '' for unnamed or repeated."""
        email_cols = [i for i, h in enumerate(header) if is_email_header(h)]
        if not email_cols:
            looks_like_data = next((h for h in header if "@" in h), None)
            if looks_like_data is not None:
                self.error(
                    line,
                    f"the first row should name the columns, but it holds an address "
                    f"('{looks_like_data}')",
                    "insert a first row naming the columns, e.g. email,first_name,last_name",
                )
                raise _Stop
            named = ", ".join(f"'{h}'" for h in header if h)
            shown = f"the columns are {named}" if named else "the first row names no columns"
            hint = HEADER_HINT
            for h in header:
                close = did_you_mean(_NOT_ALNUM.sub("", h.lower()), _EMAIL_HEADERS)
                if h and close:
                    hint = f"rename the column '{h}' to 'email': {HEADER_HINT}"
                    break
            self.error(line, f"no 'email' column ({shown})", hint)
            raise _Stop
        if len(email_cols) > 1:
            first, second = (header[i] for i in email_cols[:2])
            self.error(
                line,
                f"two columns hold email addresses: '{first}' and '{second}'",
                "keep one of them, or rename the other (e.g. 'work_email')",
            )
            raise _Stop
        keys: list[str] = []
        first_column: dict[str, int] = {}
        for number, h in enumerate(header, 1):
            key = "email" if number - 1 == email_cols[0] else field_key(h)
            if key in first_column:
                self.warning(
                    line,
                    f"column {number} ('{h}') repeats column {first_column[key]} "
                    f"(both are '{key}'); the first is used",
                    "rename or delete one of them",
                )
                key = ""
            elif key:
                first_column[key] = number
            keys.append(key)
        self.report.columns = ["email", *(k for k in keys if k and k != "email")]
        self.names = tuple(k for k in keys if k)
        self.places = [self.names.index(k) if k else -1 for k in keys]
        self.at = columns(self.names)
        self.at_email = self.names.index("email")
        return keys

    def _row(self, values: list[str], keys: list[str], start: int, end: int) -> None:
        report = self.report
        report.rows += 1
        bad = False
        if len(values) > len(keys):
            extra = values[len(keys) :]
            if any(v.strip() for v in extra):
                bad = True
                self.error(
                    start,
                    f"this row has {len(keys) + len(extra)} values but the header names "
                    f"{len(keys)} columns",
                    "put quotes around a value that holds the separator "
                    '(e.g. "Smith, Jo"), or name the extra column in the header',
                )
        if self.undecodable and not self.undecodable.isdisjoint(range(start, end + 1)):
            bad = True  # the error is already recorded for the line
        # The person's values in the list's field order; a value that repeats
        # (a team, a first name) is kept once for the whole reading.
        places, at_email, repeated = self.places, self.at_email, self.shared.values
        row = [""] * len(self.names)
        for index, value in enumerate(values):
            value = value.strip()
            if len(value) > MAX_FIELD or "\n" in value or "\r" in value or "\x00" in value:
                bad = self._bad_value(value, keys, index, start, end) or bad
            place = places[index] if index < len(places) else -1
            if place == at_email:
                row[place] = value
            elif place >= 0:
                row[place] = repeated.setdefault(value, value)
            elif value and index < len(keys) and not self.unnamed_warned:
                self.unnamed_warned = True
                self.warning(
                    start,
                    f"column {index + 1} has no name in the header (or repeats one); "
                    "its values are ignored",
                    "name the column in the first row, or delete it",
                )
        address = row[at_email]
        normalized = ""
        if not address:
            bad = True
            self.error(start, "no email address on this row", "fill it in, or delete the row")
        else:
            try:
                normalized = self.shared.addresses(address)
            except EmailNotValidError as exc:
                bad = True
                self.error(
                    start,
                    f"'{address}' is not a valid address: {exc}",
                    "put only the address in the email column, e.g. zoe@example.org"
                    if "<" in address or " " in address
                    else None,
                )
        if bad:
            report.invalid += 1
            return
        key = address_key(normalized)
        if key in self.suppressed:
            report.suppressed += 1
            return
        first = self.seen.get(key)
        if first is not None:
            report.duplicates += 1
            self.warning(start, f"duplicate of line {first} ({normalized})")
            return
        self.seen[key] = start
        row[at_email] = normalized
        fields = Fields(self.at, tuple(row))
        name = display_name(fields)
        if len(name) > LONG_NAME:
            self.warning(
                start,
                f"the name is {len(name)} characters long; it goes in the To line of the email "
                "folded over several lines, which some mail programs show oddly",
                "check the name cells of this row hold just the person's name",
            )
        report.recipients.append(
            Recipient(normalized, name, fields, self.lists, ((report.file, start),))
        )

    def _bad_value(self, value: str, keys: list[str], index: int, start: int, end: int) -> bool:
        """Record what is wrong with one cell (a line break, a NUL, too long); True if any."""
        key = keys[index] if index < len(keys) else ""
        what = f"the '{key}' value" if key else f"the value in column {index + 1}"
        bad = False
        if "\n" in value or "\r" in value:
            bad = True
            self.error(
                start,
                f"{what} has a line break in it; recipient data may not hold line breaks "
                "(they could inject mail headers)",
                f"the row runs from line {start} to line {end}: remove the line break "
                "from the cell, or add the missing closing quote",
            )
        elif "\x00" in value:
            bad = True
            self.error(start, f"{what} holds a NUL character", "retype the cell")
        if len(value) > MAX_FIELD:
            bad = True
            self.error(
                start,
                f"{what} is {len(value)} characters long; the limit is {MAX_FIELD}",
                "recipient fields are for short details such as names; shorten it",
            )
        return bad


# --------------------------------------------------------------------------- merging


def _merge(reports: Mapping[str, ListReport]) -> tuple[list[Recipient], int, list[Conflict]]:
    """One Recipient per person across lists, in order of first appearance."""
    if len(reports) == 1:
        only = next(iter(reports.values()))
        return list(only.recipients), 0, []
    order: list[str] = []
    first: dict[str, Recipient] = {}
    merged: dict[str, tuple[dict[str, str], dict[str, str], list[str], list[tuple[str, int]]]] = {}
    conflicts: list[Conflict] = []
    for name, report in reports.items():
        for person in report.recipients:
            key = address_key(person.email)
            if key not in first:
                first[key] = person
                order.append(key)
                continue
            if key not in merged:
                base = first[key]
                source = {k: base.lists[0] for k in base.fields}
                merged[key] = (dict(base.fields), source, list(base.lists), list(base.rows))
            fields, source, lists, rows = merged[key]
            lists.append(name)
            rows.extend(person.rows)
            for field_name, value in person.fields.items():
                kept = fields.get(field_name, "")
                if not kept:
                    if value:
                        fields[field_name] = value
                        source[field_name] = name
                    else:
                        fields.setdefault(field_name, "")
                elif value and value != kept and field_name != "email":
                    conflicts.append(
                        Conflict(
                            email=fields["email"],
                            field=field_name,
                            kept_list=source[field_name],
                            kept=kept,
                            other_list=name,
                            other=value,
                        )
                    )
    recipients: list[Recipient] = []
    combinations: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per set of lists
    for key in order:
        base = first[key]
        if key not in merged:
            recipients.append(base)
            continue
        fields, _, lists, rows = merged[key]
        named = combinations.setdefault(tuple(lists), tuple(lists))
        if fields == base.fields:  # nothing filled in from a later list: share the first's
            recipients.append(Recipient(base.email, base.name, base.fields, named, tuple(rows)))
        else:
            filled = Fields.of(fields)
            recipients.append(
                Recipient(base.email, display_name(filled), filled, named, tuple(rows))
            )
    return recipients, len(merged), conflicts


def apply_suppressions(selection: Selection, suppressions: Sequence[Suppression]) -> int:
    """Take out of ``selection`` the people suppressed in the ledger, from the lists each
    suppression covers (an unsubscribe from one list keeps the others); counted in each
    list's ``suppressed``. How many people are left out entirely."""
    by_key: dict[str, list[Suppression]] = {}
    for s in suppressions:
        by_key.setdefault(s.email, []).append(s)
    if not by_key:
        return 0
    kept: list[Recipient] = []
    gone: dict[str, set[str]] = {}  # list -> address keys taken out of it
    for r in selection.recipients:
        key = address_key(r.email)
        found = by_key.get(key)
        if not found:
            kept.append(r)
            continue
        lists = tuple(n for n in r.lists if not any(s.covers(n) for s in found))
        for name in set(r.lists) - set(lists):
            gone.setdefault(name, set()).add(key)
        if lists:
            kept.append(r if lists == r.lists else replace(r, lists=lists))
    for name, keys in gone.items():
        report = selection.reports[name]
        report.recipients = [x for x in report.recipients if address_key(x.email) not in keys]
        report.suppressed += len(keys)
    dropped = len(selection.recipients) - len(kept)
    selection.recipients[:] = kept
    return dropped
