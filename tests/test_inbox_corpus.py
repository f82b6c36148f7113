"""newsletter inbox against 362 real bounces and auto-replies from many mail servers
(tests/data/bounces: Microsoft 365, Exchange, Outlook.com, Gmail, Postfix, Exim, qmail,
Sendmail, Yahoo and others, from flufl.bounce's and sisimai's collections).

Each file is read as tests/data/bounces/expected.csv says: hard, soft, an auto-reply or
other mail, naming the addresses it should; a bounce naming someone this newsletter
sent to is matched to them, and every bounce that came back to a person's
bounces+TOKEN@ address is matched to that person, whatever it names."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass

import pytest
from conftest import REPO

from sender import inbox, tokens
from sender.ledger import Planned, SqliteLedger, TokenRecord
from sender.recipient import address_key
from sender.send import Eligibility

CORPUS = REPO / "tests" / "data" / "bounces"
ISSUE = "2025-02-13-steve-kay-blog"
PERSON = "verp.person@school.example.org"


@dataclass(frozen=True)
class Expected:
    file: str
    kind: str
    addresses: tuple[str, ...]
    miss: bool
    note: str

    @property
    def raw(self) -> bytes:
        return (CORPUS / self.file).read_bytes()


ROWS = [
    Expected(r["file"], r["kind"], tuple(r["addresses"].split()), r["miss"] == "miss", r["note"])
    for r in csv.DictReader((CORPUS / "expected.csv").open(encoding="utf-8"))
]


def _case(row: Expected) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=row.note)] if row.miss else []
    return pytest.param(row, id=row.file, marks=marks)


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> inbox.LedgerDirectory:
    """A ledger that sent ISSUE to every address the corpus names, and holds one
    person's private token."""
    ledger = SqliteLedger(tmp_path_factory.mktemp("corpus") / "ledger.sqlite")
    named = sorted({address_key(a) for row in ROWS for a in row.addresses} | {PERSON})
    ledger.begin(ISSUE, "Steve Kay's Blogpost", "2025-02-13", ["all-staff"], "smtp")
    ledger.snapshot(
        ISSUE,
        [Planned(a, "all-staff", f"<{n}.corpus@news.example.org>") for n, a in enumerate(named)],
        Eligibility(),
    )
    ledger.save_tokens([TokenRecord(token(), PERSON, "all-staff", ISSUE)])
    return inbox.LedgerDirectory(ledger)


def token() -> str:
    return tokens.make(b"corpus-secret-0123456789", PERSON, "all-staff", ISSUE)


def read(raw: bytes, people: inbox.Directory) -> list[inbox.Reading]:
    return inbox.read(inbox.parse(raw), people, bounce_local="bounces")


def summary(readings: list[inbox.Reading]) -> tuple[str, tuple[str, ...]]:
    kind = "+".join(sorted({r.kind for r in readings}))
    found = sorted({r.address.lower() for r in readings if r.is_bounce and r.address})
    return kind, tuple(found)


@pytest.mark.parametrize("row", [_case(r) for r in ROWS])
def test_read_and_matched_as_expected(row: Expected, people: inbox.LedgerDirectory) -> None:
    readings = read(row.raw, people)
    assert summary(readings) == (row.kind, row.addresses)
    for r in readings:
        if r.is_bounce and r.address:
            # Everyone the corpus names was sent ISSUE: matched to them, by address.
            assert (r.email, r.issue, r.matched) == (address_key(r.address), ISSUE, "address")


BOUNCES = [r for r in ROWS if r.kind in ("hard", "soft") and not r.miss]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.file) for r in BOUNCES])
def test_verp_matches_every_bounce(row: Expected, people: inbox.LedgerDirectory) -> None:
    """The same bounce delivered to bounces+TOKEN@: one reading, for the token's person,
    whatever address (or none) the bounce names."""
    raw = f"Delivered-To: bounces+{token()}@news.example.org\n".encode() + row.raw
    [reading] = read(raw, people)
    assert (reading.kind, reading.email, reading.issue, reading.matched) == (
        row.kind,
        PERSON,
        ISSUE,
        "token",
    )


def test_corpus_size_and_agreement() -> None:
    """The figures the README gives: how big the corpus is, and how often the
    inbox's reading agrees with what the files' sources say."""
    with (CORPUS / "expected.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(list(CORPUS.glob("*/*.txt")) + list(CORPUS.glob("*/*.eml"))) == 362
    kinds = Counter(r["kind"] for r in rows)
    assert kinds == {"hard": 250, "soft": 92, "auto-reply": 7, "other": 7, "hard+soft": 6}
    agrees = sum(
        (r["kind"], r["addresses"]) == (r["source_kind"], r["source_addresses"]) for r in rows
    )
    assert (agrees, sum(r["miss"] == "miss" for r in rows)) == (322, 4)
