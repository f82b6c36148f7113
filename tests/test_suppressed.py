"""newsletter suppressed: who is not sent to and why, from the ledger and from
recipients/suppressed.csv; filtered, exported, and lifted one at a time after asking."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from conftest import Cli
from pg import Store

from sender.config import load_config
from sender.ledger import Suppression, open_ledger

# Each test once with the SQLite ledger and once with PostgreSQL.
pytestmark = [pytest.mark.cli(catch_exceptions=False), pytest.mark.usefixtures("ledger_url")]

HAND = ("graham.pike@thornbury-high.example.org", "unsubscribed 2025-01-20")
RECORDED = [
    Suppression(
        "leaver@school.example.org",
        "",
        "hard bounce",
        "5.1.1",
        "550 5.1.1 User unknown",
        "2025-02-13-steve-kay-blog",
        "inbox",
        "2025-02-14T08:00:00+00:00",
    ),
    Suppression(
        "quitter@school.example.org",
        "headteachers+managers",
        "unsubscribed",
        "",
        "",
        "2025-02-13-steve-kay-blog",
        "mailto",
        "2025-02-15T09:30:00+00:00",
    ),
    Suppression(
        "full@school.example.org",
        "",
        "soft bounces",
        "4.2.2",
        "452 4.2.2 Mailbox full",
        "2025-04-10-steve-kay-blog",
        "inbox",
        "2025-04-11T07:00:00+00:00",
    ),
]


@pytest.fixture
def recorded(workspace: Path) -> Path:
    with open_ledger(load_config(workspace)) as ledger:
        for entry in RECORDED:
            assert ledger.suppress(entry)
    return workspace


def recorded_now(workspace: Path) -> set[str]:
    with open_ledger(load_config(workspace)) as ledger:
        return {s.email for s in ledger.suppressions()}


def test_lists_the_ledger_and_the_hand_kept_file(cli: Cli, recorded: Path) -> None:
    del recorded
    result = cli("suppressed", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["email"] for r in rows] == [
        "leaver@school.example.org",
        "quitter@school.example.org",
        "full@school.example.org",
        HAND[0],
        "agnieszka.hussain@riverside.example.org",
        "former.officer@riverside.example.org",
    ]
    quitter = rows[1]
    assert (quitter["lists"], quitter["reason"], quitter["source"], quitter["at"][:10]) == (
        "headteachers+managers",
        "unsubscribed",
        "mailto",
        "2025-02-15",
    )
    hand = rows[3]
    assert (hand["reason"], hand["detail"], hand["source"], hand["lists"]) == (
        "by hand",
        HAND[1],
        "recipients/suppressed.csv",
        "",
    )

    table = cli("suppressed")
    assert table.exit_code == 0, table.output
    assert "Not sent to (6)" in table.output
    assert "5.1.1" in table.output and "2025-02-14" in table.output


@pytest.mark.parametrize(
    ("reason", "who"),
    [
        ("hard", {"leaver@school.example.org"}),
        ("Soft bounces", {"full@school.example.org"}),
        ("unsubscribed", {"quitter@school.example.org"}),
        (
            "by hand",
            {
                HAND[0],
                "agnieszka.hussain@riverside.example.org",
                "former.officer@riverside.example.org",
            },
        ),
    ],
)
def test_filter_by_reason(cli: Cli, recorded: Path, reason: str, who: set[str]) -> None:
    del recorded
    result = cli("suppressed", "--reason", reason, "--csv")
    assert {r["email"] for r in csv.DictReader(io.StringIO(result.output))} == who


def test_nobody(cli: Cli, workspace: Path, store: Store) -> None:
    (workspace / "recipients" / "suppressed.csv").unlink()
    result = cli("suppressed")
    assert result.exit_code == 0
    assert "Nobody is suppressed." in result.output
    assert not store.exists(), "reading made no ledger"


def test_remove_asks_first(recorded: Path) -> None:
    from click.testing import CliRunner

    from sender.cli import cli as command

    runner = CliRunner()
    args = ["-w", str(recorded), "suppressed", "--remove", "Leaver@School.example.org"]
    no = runner.invoke(command, args, input="n\n")
    assert no.exit_code == 0, no.output
    assert "hard bounce" in no.output and "Nothing changed." in no.output
    assert "leaver@school.example.org" in recorded_now(recorded)

    yes = runner.invoke(command, args, input="y\n")
    assert yes.exit_code == 0, yes.output
    assert "will be sent to again" in yes.output
    assert recorded_now(recorded) == {"quitter@school.example.org", "full@school.example.org"}


def test_remove_with_yes(cli: Cli, recorded: Path) -> None:
    result = cli("suppressed", "--remove", "quitter@school.example.org", "--yes")
    assert result.exit_code == 0, result.output
    assert recorded_now(recorded) == {"leaver@school.example.org", "full@school.example.org"}


def test_remove_what_is_not_there(cli: Cli, recorded: Path) -> None:
    hand = cli("suppressed", "--remove", HAND[0], "--yes")
    assert hand.exit_code == 1
    assert "recipients/suppressed.csv" in hand.output and "delete its row" in hand.output
    nobody = cli("suppressed", "--remove", "someone@school.example.org", "--yes")
    assert nobody.exit_code == 1
    assert "is not suppressed" in nobody.output
    assert len(recorded_now(recorded)) == 3
