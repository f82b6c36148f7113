"""sender.addresses: the quick check of a list's addresses says exactly what
email-validator says, address by address: the same normalised address, or the
same error in the same words. Shown on the project's own addresses (its lists and
its corpus of bad CSV files) and on addresses hypothesis makes up around every
edge of the quick path: characters, mailbox names email-validator lower-cases,
special-use and internationalised domains, lengths either side of the limits."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sender.addresses import Addresses, EmailNotValidError, check
from sender.lists import _Shared, is_email_header, read_list, read_suppressed

DATA = Path(__file__).parent / "data"


def verdict(checker: object, address: str) -> tuple[str, str]:
    assert callable(checker)
    try:
        return ("valid", checker(address))
    except EmailNotValidError as exc:
        return ("invalid", str(exc))


def addresses_in(folder: Path) -> list[str]:
    """Every cell of the email column of each CSV file in ``folder`` that has one."""
    found: list[str] = []
    for path in sorted(folder.glob("*.csv")):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        delimiter = ";" if text.count(";") > text.count(",") else ","
        rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
        columns = [i for i, h in enumerate(rows[0] if rows else []) if is_email_header(h)]
        found += [row[i].strip() for row in rows[1:] for i in columns if i < len(row)]
    return found


PROJECT = addresses_in(DATA / "bad_csv") + addresses_in(REPO / "recipients")


@pytest.mark.parametrize("address", PROJECT)
def test_the_projects_own_addresses_get_email_validators_verdict(address: str) -> None:
    assert verdict(Addresses(), address) == verdict(check, address)


def test_the_corpus_holds_both_kinds() -> None:
    verdicts = {verdict(check, a)[0] for a in PROJECT}
    assert verdicts == {"valid", "invalid"}
    assert len(PROJECT) > 40


# -- made-up addresses -------------------------------------------------------------

ATEXT = "abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~"
ODD = ' ."(),:;<>@[\\]éßΩ\t'
MAILBOXES = ["postmaster", "Postmaster", "ABUSE", "webmaster", "hostmaster", "noc", "security"]
# Domains met again and again (so what is remembered of one is used for the next),
# some that email-validator refuses or writes differently.
DOMAINS = ["example.org", "Example.ORG", "school.example.co.uk", "a.b", "x-y.example.net"]
DOMAINS += ["example.test", "host.local", "localhost", "example", "bücher.example"]
DOMAINS += ["xn--bcher-kva.example", "-lead.example.org", "trail-.example.org"]
DOMAINS += ["under_score.example.org", "a..b.org", "example.org.", "1.2.3.4", "e.123"]
DOMAINS += ["a" * 63 + ".org", "a" * 64 + ".org", ("abcdefghi." * 25) + "org"]
# Three labels of twenty '中' in IDNA form: 88 characters, but 190 bytes as email-validator
# writes the domain back in Unicode, which is the form whose length it checks too.
CJK = ".".join(["xn--fiqaaaaaaaaaaaaaaaaaaa"] * 3) + ".example"
DOMAINS += [CJK]
LABELS = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=12)

dot_atoms = st.lists(st.text(alphabet=ATEXT, min_size=1, max_size=12), min_size=1, max_size=4).map(
    ".".join
)
local_parts = st.one_of(
    dot_atoms,
    dot_atoms,
    st.text(alphabet=ATEXT + ".", min_size=0, max_size=20),
    st.text(alphabet=ATEXT + ODD, min_size=0, max_size=10),
    st.sampled_from(MAILBOXES),
    st.integers(min_value=1, max_value=250).map(lambda n: "x" * n),
)
domains = st.one_of(
    st.sampled_from(DOMAINS),
    st.sampled_from(DOMAINS),
    st.lists(LABELS, min_size=1, max_size=4).map(".".join),
    st.integers(min_value=1, max_value=250).map(lambda n: "d" * n + ".org"),
)
made_up = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains),
    st.builds(lambda local, domain: f"{local}@{domain}", dot_atoms, st.sampled_from(DOMAINS[:5])),
    st.text(max_size=30),
)

# One instance for every example: what it remembers of one address (its domain)
# is then put to the test by the next.
SHARED = Addresses()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(made_up)
def test_made_up_addresses_get_email_validators_verdict(address: str) -> None:
    assert verdict(SHARED, address) == verdict(check, address)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=260), st.sampled_from(["example.org", "Ex.ORG", CJK]))
def test_either_side_of_the_length_limit(length: int, domain: str) -> None:
    address = "p" * max(1, length - len(domain) - 1) + "@" + domain
    assert verdict(SHARED, address) == verdict(check, address)


# -- asked once ---------------------------------------------------------------------


def test_email_validator_is_asked_once_per_domain_not_once_per_row(tmp_path: Path) -> None:
    """Three lists, 300 people at three domains, one of them at an internationalised
    domain on every list: email-validator is asked four times in all."""
    recipients = tmp_path / "recipients"
    recipients.mkdir()
    domains = ("north.example.org", "south.example.org", "Central.Example.ORG")
    people = [f"person{i}@{domains[i % 3]}" for i in range(300)]
    unusual = "jo@bücher.example"  # not the quick path's shape: email-validator sees it
    for name, step in (("all-staff", 1), ("managers", 2), ("heads", 5)):
        rows = ["email,first_name", *(f"{p},P{i}" for i, p in enumerate(people[::step]))]
        (recipients / f"{name}.csv").write_text(
            "\n".join([*rows, f"{unusual},Jo"]) + "\n", encoding="utf-8"
        )
    shared = _Shared()
    suppressed, _ = read_suppressed(recipients, tmp_path, shared)
    read = [
        read_list(recipients / f"{name}.csv", tmp_path, suppressed, shared=shared)
        for name in ("all-staff", "managers", "heads")
    ]
    assert shared.addresses.asked == 3 + 1
    assert [len(r.recipients) for r in read] == [301, 151, 61]
    assert {p.email.split("@")[1] for p in read[0].recipients} == {
        "north.example.org",
        "south.example.org",
        "central.example.org",
        "xn--bcher-kva.example",
    }
