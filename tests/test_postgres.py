"""The PostgreSQL ledger itself: its setting, its password, its schema's version, and
``newsletter ledger migrate`` from an SQLite file. (What both ledgers promise alike is
tested against both, in test_ledger.py, test_send.py and test_nobody_twice.py.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pg
import pytest
from conftest import Cli

from sender.config import load_config
from sender.ledger import LedgerError, Planned, SqliteLedger, Suppression
from sender.ledger.postgres import PostgresLedger
from sender.problems import ProblemsError
from sender.send import Eligibility
from sender.transports import Outcome

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"

pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]


def set_ledger(workspace: Path, value: str, extra: str = "") -> None:
    config = workspace / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    line = '\nledger = "ledger.sqlite"\n'
    assert line in text
    config.write_text(text.replace(line, f'\nledger = "{value}"\n{extra}', 1), encoding="utf-8")


def test_a_database_address_is_a_ledger_setting_and_a_path_still_is(workspace: Path) -> None:
    assert load_config(workspace).ledger == Path("ledger.sqlite")
    set_ledger(workspace, "postgresql://news@db.example.org/newsletter?sslmode=verify-full")
    config = load_config(workspace)
    assert config.ledger == "postgresql://news@db.example.org/newsletter?sslmode=verify-full"
    assert config.ledger_password_env == "NEWSLETTER_LEDGER_PASSWORD"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("postgresql://news:hunter2@db.example.org/newsletter", "has a password in it"),
        ("postgresql://news@db.example.org", "names no database"),
    ],
)
def test_a_database_address_with_a_password_or_no_database_is_refused(
    workspace: Path, value: str, said: str
) -> None:
    set_ledger(workspace, value)
    with pytest.raises(ProblemsError) as caught:
        load_config(workspace)
    text = " ".join(str(p) for p in caught.value.problems)
    assert said in text, text
    assert "hunter2" not in text


def test_the_password_comes_from_the_environment_and_is_never_shown(
    pg_cluster: pg.Cluster, monkeypatch: pytest.MonkeyPatch, workspace: Path, cli: Cli
) -> None:
    url = pg_cluster.url(pg_cluster.new_database(), pg.TELLER)
    monkeypatch.delenv("NEWSLETTER_LEDGER_PASSWORD", raising=False)
    with pytest.raises(LedgerError) as caught:
        PostgresLedger(url)
    assert "NEWSLETTER_LEDGER_PASSWORD" in str(caught.value)
    set_ledger(workspace, url, 'ledger_password_env = "TEAM_LEDGER_PASSWORD"\n')
    refused = cli("send", BLOG, "--list", "managers", "--yes")
    assert refused.exit_code == 1
    assert "TEAM_LEDGER_PASSWORD" in refused.output, refused.output
    monkeypatch.setenv("TEAM_LEDGER_PASSWORD", "wrong-" + pg.TELLER_PASSWORD)
    wrong = cli("send", BLOG, "--list", "managers", "--yes")
    assert wrong.exit_code == 1 and "password authentication failed" in wrong.output
    assert pg.TELLER_PASSWORD not in wrong.output
    monkeypatch.setenv("TEAM_LEDGER_PASSWORD", pg.TELLER_PASSWORD)
    sent = cli("send", BLOG, "--list", "managers", "--yes")
    assert sent.exit_code == 0, sent.output
    status = cli("status", BLOG)
    assert "managers" in status.output
    assert pg.TELLER_PASSWORD not in sent.output + status.output
    assert pg.TELLER_PASSWORD not in repr(PostgresLedger(url, password_env="TEAM_LEDGER_PASSWORD"))


def test_a_database_set_up_by_a_newer_program_is_refused_and_left_alone(pg_url: str) -> None:
    PostgresLedger(pg_url).close()
    store = pg.Store("postgresql", Path("unused"), pg_url)
    store.rows("UPDATE ledger_schema SET version = 99")
    with pytest.raises(LedgerError) as caught:
        PostgresLedger(pg_url)
    assert "newer version of newsletter (schema 99; this one knows 1)" in str(caught.value)
    assert store.rows("SELECT version FROM ledger_schema") == [(99,)]


def test_two_programs_opening_a_new_database_at_once_make_its_tables_once(pg_url: str) -> None:
    import threading

    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            PostgresLedger(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = pg.Store("postgresql", Path("unused"), pg_url)
    assert store.rows("SELECT version FROM ledger_schema") == [(1,)]


def test_without_psycopg_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(LedgerError) as caught:
        PostgresLedger(pg_url)
    assert "pip install 'newsletter-sender[postgresql]'" in str(caught.value)


def test_a_database_that_does_not_answer_is_said_plainly(cli: Cli, workspace: Path) -> None:
    from servers import free_port

    set_ledger(workspace, f"postgresql://news@127.0.0.1:{free_port()}/newsletter")
    result = cli("status", BLOG)
    assert result.exit_code == 1
    assert "The ledger database postgresql://news@127.0.0.1:" in result.output
    assert "Traceback" not in result.output


# -- newsletter ledger migrate ---------------------------------------------------------


def sqlite_history(workspace: Path, cli: Cli) -> None:
    """A ledger file with sends (one stopped part-way), a test send, suppressions,
    bounces, tokens, and people whose answer is unknown, failed or deferred."""
    assert cli("send", BLOG, "--list", "managers", "--limit", "7", "--yes").exit_code == 0
    assert cli("send", BLOG, "--test-to", "me@example.net").exit_code == 0
    ledger = SqliteLedger(workspace / "ledger.sqlite")
    try:
        people = [Planned(f"p{i}@example.org", "staff", f"<{i}@x>") for i in range(6)]
        ledger.snapshot("memo", people, Eligibility())
        send_id = ledger.begin("memo", "Memo", "2025-03-01", ["staff"], "smtp")
        answers = ["sent", "unknown", "failed", "deferred"]
        for p, state in zip(people, answers, strict=False):
            ledger.mark_sending("memo", p.email, send_id)
            ledger.mark_done("memo", p.email, Outcome(state, 250, state, relay="relay-a"))  # type: ignore[arg-type]
        ledger.mark_sending("memo", people[4].email, send_id)  # then the power went
        ledger.finish(send_id, interrupted=True)
        ledger.suppress(
            Suppression(
                "p2@example.org", "", "hard bounce", "5.1.1", "no such user", "memo", "inbox", ""
            )
        )
        ledger.suppress(
            Suppression("p3@example.org", "staff", "unsubscribed", "", "web", "memo", "web", "")
        )
        ledger.record_bounce("p2@example.org", "memo", "hard", "5.1.1", "no such user", "inbox")
        ledger.mark_seen("<bounce-1@x>", "hard bounce")
    finally:
        ledger.close()


def test_migrate_copies_everything_checks_counts_and_shows_the_same(
    cli: Cli, workspace: Path, pg_url: str
) -> None:
    sqlite_history(workspace, cli)
    before = {cmd: cli(*cmd).output for cmd in (("history",), ("status", BLOG))}
    lite = pg.Store("sqlite", workspace / "ledger.sqlite")
    tables = (
        "sends",
        "deliveries",
        "test_sends",
        "issues",
        "suppressions",
        "bounces",
        "tokens",
        "inbox_seen",
    )
    counts = {t: lite.rows(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}
    assert all(counts.values()), counts

    moved = cli("ledger", "migrate", "--to", pg_url)
    assert moved.exit_code == 0, moved.output
    assert f"{counts['deliveries']} deliveries" in moved.output
    assert f'ledger = "{pg_url}"' in moved.output
    db = pg.Store("postgresql", workspace / "ledger.sqlite", pg_url)
    assert {t: db.rows(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables} == counts
    row = "SELECT issue, email, address, lists, message_id, state, code, detail, attempts,"
    row += " send_id, updated, generation, relay FROM deliveries ORDER BY issue, email"
    assert db.rows(row) == lite.rows(row)
    assert db.rows("SELECT * FROM sends ORDER BY id") == lite.rows(
        "SELECT * FROM sends ORDER BY id"
    )
    assert lite.rows("SELECT COUNT(*) FROM sends")[0][0] == counts["sends"]  # left as it was

    set_ledger(workspace, pg_url)
    after = {cmd: cli(*cmd).output for cmd in before}
    assert after == before
    # The database carries on where the file stopped: the 7 saved before are skipped.
    again = cli("send", BLOG, "--list", "managers", "--yes")
    assert again.exit_code == 0, again.output
    assert "7 are already in the outbox and are skipped" in again.output
    assert db.rows("SELECT MAX(id) FROM sends") == [(counts["sends"] + 1,)]
    # Copied twice is refused: two ledgers are not merged.
    twice = cli("ledger", "migrate", "--to", pg_url, "--from", workspace / "ledger.sqlite")
    assert twice.exit_code == 1
    assert "already holds a ledger" in twice.output


def test_migrate_refuses_an_address_with_a_password(cli: Cli) -> None:
    result = cli("ledger", "migrate", "--to", "postgresql://u:secretpw@127.0.0.1/x")
    assert result.exit_code == 2
    assert "secretpw" not in result.output
    assert re.search(r"has a password in it", result.output)
