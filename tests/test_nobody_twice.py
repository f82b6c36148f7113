"""Nobody twice, nobody missed: what the ledger promises, end to end.

Real workspaces on disk, the real CLI (CliRunner, or ``python -m sender`` as a
subprocess where two processes or exit codes matter), a real SMTP server on
127.0.0.1 (aiosmtpd) that each test starts and stops, and the real ledger:
the tests marked ``ledger_url`` run once with the SQLite file and once with a
database of the tests' PostgreSQL server; the others test the SQLite file itself
(its old formats, damage, a full disk, its permissions).
"""

from __future__ import annotations

import asyncio
import csv
import email
import email.message
import email.policy
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import TOKEN_SECRET
from pg import Store
from servers import Recorder, aiosmtpd

from sender.cli import cli
from sender.ledger import LedgerFull, Planned, SqliteLedger
from sender.ledger.schema import VERSION
from sender.lists import select
from sender.send import Eligibility
from sender.transports import Outcome
from sender.workspace import Workspace

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"
BLOG_KEY = "2025-02-13-steve-kay-blog"
PRIYA = "priya.shah@riverside.example.org"  # managers.csv spells it so
PRIYA_ALL_STAFF = "Priya.Shah@riverside.example.org"  # all-staff.csv spells it so
STATES = ("pending", "sending", "sent", "deferred", "failed", "unknown")
ENV = {
    **os.environ,
    "NO_COLOR": "1",
    "COLUMNS": "200",
    "SOURCE_DATE_EPOCH": "1739404800",
    "NEWSLETTER_TOKEN_SECRET": TOKEN_SECRET,
}

pytestmark = pytest.mark.usefixtures("fixed_date")


# -- helpers -------------------------------------------------------------------


def in_workspace(workspace: Path, args: tuple[str, ...]) -> list[str]:
    """Issue paths (``newsletters/…``) are the workspace's, not the current folder's."""
    return [str(workspace / a) if a.startswith("newsletters/") else a for a in args]


def run(workspace: Path, *args: str) -> Result:
    argv = ["-w", str(workspace), *in_workspace(workspace, args)]
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def subprocess_argv(workspace: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "sender", "-w", str(workspace), *in_workspace(workspace, args)]


def use_smtp(workspace: Path, port: int, **settings: Any) -> None:
    """Point the workspace's [smtp] at a local test server, no TLS, no login
    (as tests/test_send_smtp.py does); everything else stays as shipped."""
    toml = (workspace / "newsletter.toml").read_text(encoding="utf-8")
    toml = toml[: toml.index("\n[smtp]\n") + 1]
    values = {"host": "127.0.0.1", "port": port, "security": "none", "connections": 2, "rate": 0}
    values.update(settings)
    lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()]
    (workspace / "newsletter.toml").write_text(
        toml + "[smtp]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )


def outbox_is_delivery(workspace: Path) -> None:
    config = workspace / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    assert "\n[send]\n" in text
    config.write_text(
        text.replace("\n[send]\n", "\n[send]\noutbox_is_delivery = true\n"), encoding="utf-8"
    )


def people(workspace: Path, n: int, name: str = "staff") -> list[str]:
    emails = [f"person{i:04d}@school{i % 7}.example.org" for i in range(n)]
    rows = [f"{e},Person{i}" for i, e in enumerate(emails)]
    (workspace / "recipients" / f"{name}.csv").write_text(
        "email,first_name\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return emails


def write_issue(workspace: Path, name: str, *, title: str, date: str) -> str:
    """A small valid issue (the shape of the shipped blog), saved as newsletters/NAME."""
    text = f"""\
title: {title}
date: {date}
preheader: A short note for everyone this week
template: blog
numbered: false
author:
  name: Comms Team
  role: Communications
greeting: Dear {{{{ first_name | default("colleagues") }}}},
intro: |
  A short note for everyone this week.
sections:
  - heading: News
    body: |
      Some news that everyone needs to know about.
sign_off: |
  Best wishes
"""
    (workspace / "newsletters" / name).write_text(text, encoding="utf-8")
    return f"newsletters/{name}"


def parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def received(handler: Recorder, start: int = 0) -> list[tuple[str, str, str]]:
    """(recipient, Message-ID, Subject) of every message the server got since ``start``."""
    out: list[tuple[str, str, str]] = []
    for _, rcpts, data in handler.messages[start:]:
        msg = parse(data)
        out.extend((r, str(msg["Message-ID"]), str(msg["Subject"])) for r in rcpts)
    return out


def db_rows(path: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def ledger_rows(workspace: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the workspace's ledger, whichever it is, read from outside the program."""
    return Store.of(workspace).rows(sql)


def deliveries(workspace: Path) -> list[tuple[str, str, str, str, str]]:
    """(issue, email, address, state, message_id) of every row, from the ledger itself."""
    return ledger_rows(
        workspace, "SELECT issue, email, address, state, message_id FROM deliveries ORDER BY rowid"
    )


def everyone_counts(status_output: str) -> dict[str, int]:
    """The 'all lists' row of `newsletter status`, state -> count (the first table's);
    its last column is how many bounced since."""
    line = next(x for x in status_output.splitlines() if "all lists" in x)
    numbers = [int(n) for n in re.findall(r"\d+", line)]
    columns = (*STATES, "bounced")
    assert len(numbers) == len(columns), line
    return dict(zip(columns, numbers, strict=True))


@pytest.fixture
def smtp(workspace: Path) -> Iterator[Recorder]:
    """A recording aiosmtpd server on 127.0.0.1, the workspace's [smtp] pointed at it."""
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        yield handler


def smtp_send(workspace: Path, issue: str, *args: str, lst: str = "staff") -> Result:
    return run(workspace, "send", issue, "--list", lst, "--transport", "smtp", "--yes", *args)


# -- 1. Same person, different capitals ------------------------------------------


@pytest.mark.usefixtures("ledger_url")
def test_same_person_in_other_capitals_is_sent_once_has_one_row_and_counts_once(
    workspace: Path, smtp: Recorder
) -> None:
    ws = Workspace.open(workspace)
    staff = {
        r.email.casefold()
        for r in select(ws.config.recipients_dir, workspace, ["all-staff"]).recipients
    }
    managers = {
        r.email.casefold()
        for r in select(ws.config.recipients_dir, workspace, ["managers"]).recipients
    }
    # The premise, as the lists ship: she is on both, spelt differently.
    csv_all = (workspace / "recipients" / "all-staff.csv").read_text(encoding="utf-8")
    csv_managers = (workspace / "recipients" / "managers.csv").read_text(encoding="utf-8")
    assert f"\n{PRIYA_ALL_STAFF}," in csv_all and f"\n{PRIYA}," not in csv_all
    assert f"\n{PRIYA}," in csv_managers
    assert PRIYA in staff and PRIYA in managers

    first = smtp_send(workspace, BLOG, lst="all-staff")
    assert first.exit_code == 0, first.output
    after_first = len(smtp.messages)
    assert after_first == len(staff)
    second = smtp_send(workspace, BLOG, lst="managers")
    assert second.exit_code == 0, second.output
    assert len(smtp.messages) - after_first == len(managers - staff)

    got = received(smtp)
    to_priya = [r for r, _, _ in got if r.casefold() == PRIYA]
    assert to_priya == [PRIYA_ALL_STAFF]
    keys = [r.casefold() for r, _, _ in got]
    assert len(keys) == len(set(keys)) == len(staff | managers)

    rows = deliveries(workspace)
    hers = [r for r in rows if r[1].casefold() == PRIYA]
    assert [(issue, e, a, s) for issue, e, a, s, _ in hers] == [
        (BLOG_KEY, PRIYA, PRIYA_ALL_STAFF, "sent")
    ]
    assert len(rows) == len(staff | managers)
    assert all(e == e.casefold() for _, e, _, _, _ in rows)
    assert {s for _, _, _, s, _ in rows} == {"sent"}

    status = run(workspace, "status", BLOG)
    assert status.exit_code == 0, status.output
    assert everyone_counts(status.output) == {
        **dict.fromkeys(STATES, 0),
        "sent": len(staff | managers),
        "bounced": 0,
    }, status.output
    assert "priya" not in status.output.casefold()  # not listed as a failure either


# The deliveries table exactly as version 1 shipped it (PRAGMA user_version 0).
V1_DDL = """
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY,
    issue TEXT NOT NULL,
    title TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    lists TEXT NOT NULL,
    transport TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    deferred INTEGER NOT NULL DEFAULT 0,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS deliveries (
    issue TEXT NOT NULL,
    email TEXT NOT NULL,
    lists TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'deferred', 'failed')),
    code INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    send_id INTEGER REFERENCES sends (id),
    updated TEXT NOT NULL,
    PRIMARY KEY (issue, email)
);
DROP INDEX IF EXISTS deliveries_state;
CREATE TABLE IF NOT EXISTS test_sends (
    id INTEGER PRIMARY KEY,
    issue TEXT NOT NULL,
    email TEXT NOT NULL,
    as_lists TEXT NOT NULL,
    as_recipient TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    code INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);
"""


def test_an_old_ledger_is_merged_to_one_row_per_person_and_outbox_sends_become_rehearsals(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.executescript(V1_DDL)
    assert db.execute("PRAGMA user_version").fetchone() == (0,)
    stamp = "2025-02-13T09:00:00.000+00:00"
    db.executemany(
        "INSERT INTO sends (id, issue, title, issue_date, lists, transport, started, finished,"
        " sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "blog", "Blog", "2025-02-13", "all-staff,managers", "smtp", stamp, stamp, 2),
            (2, "memo", "Memo", "2025-02-14", "managers", "eml", stamp, stamp, 1),
        ],
    )
    db.executemany(
        "INSERT INTO deliveries (issue, email, lists, message_id, state, code, detail, attempts,"
        " send_id, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                "blog",
                "Priya.Shah@x.example.org",
                "all-staff",
                "<1@x>",
                "sent",
                250,
                "ok",
                1,
                1,
                stamp,
            ),
            (
                "blog",
                "priya.shah@x.example.org",
                "managers",
                "<2@x>",
                "pending",
                None,
                "",
                0,
                1,
                stamp,
            ),
            ("blog", "sam@x.example.org", "managers", "<3@x>", "sent", 250, "ok", 1, 1, stamp),
            ("memo", "sam@x.example.org", "managers", "<4@x>", "sent", None, "saved", 1, 2, stamp),
        ],
    )
    db.commit()
    db.close()

    ledger = SqliteLedger(path)
    try:
        blog = ledger.deliveries("blog")
        assert [(d.email, d.address, d.state, d.message_id) for d in blog] == [
            ("priya.shah@x.example.org", "Priya.Shah@x.example.org", "sent", "<1@x>"),
            ("sam@x.example.org", "sam@x.example.org", "sent", "<3@x>"),
        ], blog
        assert ledger.deliveries("memo") == []
        memo = ledger.deliveries("memo#rehearsal")
        assert [(d.email, d.state) for d in memo] == [("sam@x.example.org", "sent")]
        scopes = {s.id: (s.transport, s.scope) for s in ledger.sends()}
        assert scopes == {1: ("smtp", "delivery"), 2: ("eml", "rehearsal")}
    finally:
        ledger.close()
    assert db_rows(path, "PRAGMA user_version") == [(VERSION,)]  # brought to the newest
    rows = db_rows(
        path, "SELECT issue, email, address, state FROM deliveries ORDER BY issue, email"
    )
    assert [r for r in rows if r[1].casefold() == "priya.shah@x.example.org"] == [
        ("blog", "priya.shah@x.example.org", "Priya.Shah@x.example.org", "sent")
    ]
    assert [r[0] for r in rows if r[1] == "sam@x.example.org"] == ["blog", "memo#rehearsal"]
    assert all(issue.endswith("#rehearsal") for issue, *_ in rows if issue.startswith("memo"))


# -- 2. Two sends at once --------------------------------------------------------


class SlowRecorder(Recorder):
    """The recording server, taking ``delay`` seconds over each message."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.usefixtures("ledger_url")
def test_two_sends_at_once_one_sends_the_other_stops_at_once_nobody_twice_nobody_missed(
    workspace: Path,
) -> None:
    n = 300
    emails = people(workspace, n, "crowd")
    handler = SlowRecorder(delay=0.015)  # 300 messages over 2 connections: 2.25 s at least
    argv = subprocess_argv(workspace, "send", BLOG, "-l", "crowd", "--transport", "smtp", "--yes")
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        procs = [
            subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        ended: dict[int, tuple[float, int]] = {}  # pid -> (when, messages the server had)
        try:
            deadline = time.monotonic() + 180
            while len(ended) < 2:
                assert time.monotonic() < deadline, "the sends did not finish"
                for p in procs:
                    if p.pid not in ended and p.poll() is not None:
                        ended[p.pid] = (time.monotonic(), len(handler.messages))
                time.sleep(0.01)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(30)
        outputs = {p.pid: p.stdout.read().decode() if p.stdout else "" for p in procs}
        for p in procs:
            if p.stdout:
                p.stdout.close()
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    winner = next(p for p in procs if p.returncode == 0)
    loser = next(p for p in procs if p.returncode == 1)
    assert f"Done: {n} emails sent" in outputs[winner.pid], outputs[winner.pid]
    said = outputs[loser.pid]
    assert f"is being sent right now by process {winner.pid} on {socket.gethostname()}" in said, (
        said
    )
    assert "Traceback" not in said
    # At once: it stopped while the other was still sending.
    assert ended[loser.pid][0] < ended[winner.pid][0]
    assert ended[loser.pid][1] < n, "the loser only stopped after everyone was sent"

    ids = [mid for _, mid, _ in received(handler)]
    assert len(ids) == n
    assert [mid for mid, k in Counter(ids).items() if k > 1] == []
    assert sorted(r for r, _, _ in received(handler)) == sorted(emails)
    rows = deliveries(workspace)
    assert {e for _, e, _, _, _ in rows} == set(emails)
    assert {s for _, _, _, s, _ in rows} == {"sent"}
    assert {m for *_, m in rows} == set(ids)
    assert ledger_rows(workspace, "SELECT COUNT(*) FROM sends") == [(1,)]
    assert ledger_rows(workspace, "SELECT * FROM holds") == []


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    return child.pid


@pytest.mark.usefixtures("ledger_url")
def test_a_hold_left_by_a_process_that_is_gone_does_not_block_the_next_send(
    workspace: Path, smtp: Recorder
) -> None:
    store = Store.of(workspace)
    store.open().close()  # a ledger of today's format
    pid = dead_pid()
    since = datetime.now(UTC).isoformat(timespec="milliseconds")
    store.rows(
        "INSERT INTO holds (issue, host, pid, since, heartbeat, token) VALUES (?, ?, ?, ?, ?, ?)",
        (BLOG_KEY, socket.gethostname(), pid, since, time.time(), "0" * 32),
    )
    managers = people(workspace, 6, "few")
    result = smtp_send(workspace, BLOG, lst="few")
    assert result.exit_code == 0, result.output
    assert "took over" in result.output
    assert f"process {pid} on {socket.gethostname()}" in result.output
    assert sorted(r for r, _, _ in received(smtp)) == sorted(managers)
    assert ledger_rows(workspace, "SELECT * FROM holds") == []


# -- 3. The issue is not its file name ---------------------------------------------


@pytest.mark.usefixtures("ledger_url")
def test_another_issue_whose_file_name_gives_the_same_slug_is_a_new_issue(
    workspace: Path, smtp: Recorder
) -> None:
    emails = people(workspace, 12)
    first_file = write_issue(workspace, "2025-03-02-note.yaml", title="Note", date="2025-03-02")
    first = smtp_send(workspace, first_file)
    assert first.exit_code == 0, first.output
    before = received(smtp)
    assert sorted(r for r, _, _ in before) == sorted(emails)
    second_file = write_issue(
        workspace, "2025-03-02 Note.yaml", title="Another note", date="2025-03-02"
    )
    second = smtp_send(workspace, second_file)
    assert second.exit_code == 0, second.output
    assert "already have this issue" not in second.output
    after = received(smtp, len(before))
    assert sorted(r for r, _, _ in after) == sorted(emails)
    assert {s for _, _, s in after} == {"Another note"}
    assert {m for _, m, _ in after}.isdisjoint({m for _, m, _ in before})
    rows = deliveries(workspace)
    issues = Counter(i for i, *_ in rows)
    assert sorted(issues.values()) == [12, 12] and len(issues) == 2, issues


@pytest.mark.usefixtures("ledger_url")
def test_a_renamed_file_resumes_its_send(workspace: Path, smtp: Recorder) -> None:
    emails = people(workspace, 12)
    issue = write_issue(workspace, "note.yaml", title="Note", date="2025-03-02")
    partial = smtp_send(workspace, issue, "--limit", "5")
    assert partial.exit_code == 0, partial.output
    assert len(smtp.messages) == 5
    (workspace / issue).rename(workspace / "newsletters" / "note-final.yaml")
    again = smtp_send(workspace, "newsletters/note-final.yaml")
    assert again.exit_code == 0, again.output
    assert "5 already have this issue and are skipped" in again.output
    got = received(smtp)
    assert sorted(r for r, _, _ in got) == sorted(emails)  # everyone once
    assert len({m for _, m, _ in got}) == 12


@pytest.mark.usefixtures("ledger_url")
def test_a_typo_fixed_in_the_title_resumes_its_send(workspace: Path, smtp: Recorder) -> None:
    emails = people(workspace, 12)
    issue = write_issue(workspace, "weekly.yaml", title="Weekly Nte", date="2025-03-02")
    partial = smtp_send(workspace, issue, "--limit", "5")
    assert partial.exit_code == 0, partial.output
    assert len(smtp.messages) == 5
    write_issue(workspace, "weekly.yaml", title="Weekly Note", date="2025-03-02")
    again = smtp_send(workspace, issue)
    assert again.exit_code == 0, again.output
    assert "5 already have this issue and are skipped" in again.output
    got = received(smtp)
    assert sorted(r for r, _, _ in got) == sorted(emails)
    assert [s for _, _, s in got[5:]] == ["Weekly Note"] * 7


@pytest.mark.usefixtures("ledger_url")
def test_next_weeks_issue_saved_over_the_same_file_is_a_new_issue(
    workspace: Path, smtp: Recorder
) -> None:
    emails = people(workspace, 12)
    issue = write_issue(workspace, "weekly.yaml", title="This week", date="2025-03-02")
    first = smtp_send(workspace, issue)
    assert first.exit_code == 0, first.output
    before = received(smtp)
    assert len(before) == 12
    write_issue(workspace, "weekly.yaml", title="Next week", date="2025-03-09")
    second = smtp_send(workspace, issue)
    assert second.exit_code == 0, second.output
    after = received(smtp, 12)
    assert sorted(r for r, _, _ in after) == sorted(emails)
    assert {s for _, _, s in after} == {"Next week"}
    assert {m for _, m, _ in after}.isdisjoint({m for _, m, _ in before})


@pytest.mark.usefixtures("ledger_url")
def test_a_changed_date_mid_send_asks_and_same_as_resumes_new_issue_sends_to_everyone(
    workspace: Path, smtp: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    emails = people(workspace, 12)
    issue = write_issue(workspace, "weekly.yaml", title="Weekly", date="2025-03-02")
    partial = smtp_send(workspace, issue, "--limit", "5")
    assert partial.exit_code == 0, partial.output
    first_five = received(smtp)
    assert len(first_five) == 5
    write_issue(workspace, "weekly.yaml", title="Weekly", date="2025-03-03")
    sends_before = ledger_rows(workspace, "SELECT COUNT(*) FROM sends")
    other = tmp_path_factory.mktemp("other-workspace")
    shutil.copytree(workspace, other, dirs_exist_ok=True)

    asked = smtp_send(workspace, issue)
    assert asked.exit_code == 1, asked.output
    assert "--same-as" in asked.output and "--new-issue" in asked.output, asked.output
    assert len(smtp.messages) == 5  # nothing sent
    assert ledger_rows(workspace, "SELECT COUNT(*) FROM sends") == sends_before
    found = re.search(r"--same-as (\S+) ", asked.output)
    assert found, asked.output
    key = found.group(1)
    assert key == "weekly"

    same = smtp_send(workspace, issue, "--same-as", key)
    assert same.exit_code == 0, same.output
    got = received(smtp)
    assert sorted(r for r, _, _ in got) == sorted(emails)  # the other 7, nobody twice

    new = smtp_send(other, issue, "--new-issue")
    assert new.exit_code == 0, new.output
    fresh = received(smtp, 12)
    assert sorted(r for r, _, _ in fresh) == sorted(emails)  # everyone
    assert {m for _, m, _ in fresh}.isdisjoint({m for _, m, _ in first_five})


@pytest.mark.usefixtures("ledger_url")
def test_resend_gives_new_message_ids_and_says_so(workspace: Path, smtp: Recorder) -> None:
    emails = people(workspace, 12)
    issue = write_issue(workspace, "weekly.yaml", title="Weekly", date="2025-03-02")
    assert smtp_send(workspace, issue).exit_code == 0
    before = {r: m for r, m, _ in received(smtp)}
    again = smtp_send(workspace, issue, "--resend")
    assert again.exit_code == 0, again.output
    assert "with new Message-IDs" in again.output, again.output
    after = {r: m for r, m, _ in received(smtp, 12)}
    assert sorted(after) == sorted(emails)
    assert all(after[e] != before[e] for e in emails)
    assert {e: m for _, e, _, _, m in deliveries(workspace)} == after


# -- 4. A rehearsal is not a delivery ---------------------------------------------


@pytest.mark.usefixtures("ledger_url")
def test_a_rehearsal_in_the_outbox_does_not_stop_the_real_send(
    workspace: Path, smtp: Recorder
) -> None:
    emails = people(workspace, 7)
    rehearsal = run(workspace, "send", BLOG, "-l", "staff", "--transport", "eml", "--yes")
    assert rehearsal.exit_code == 0, rehearsal.output
    assert len(list((workspace / "outbox" / BLOG_KEY).glob("*.eml"))) == 7
    assert smtp.messages == []
    real = smtp_send(workspace, BLOG)
    assert real.exit_code == 0, real.output
    assert "7 saved to the outbox earlier, not sent" in real.output, real.output
    assert "Done: 7 emails sent" in real.output
    assert sorted(r for r, _, _ in received(smtp)) == sorted(emails)


# -- 5. One long name ------------------------------------------------------------------


def long_name(kind: str) -> str:
    if kind == "words":
        unit = "Alexandra Bartholomew "
    elif kind == "one-word":
        unit = "Llanfairpwllgwyngyll"
    else:
        unit = "Zoë Łukasz-Zieliński Siân "
    text = (unit * (1000 // len(unit) + 1))[:1000]
    if text.endswith(" "):
        text = text[:-1] + "x"
    assert len(text) == 1000
    return text


def python_joins_encoded_words_in_addresses() -> bool:
    """Whether this Python's address parser follows RFC 2047 6.2 (CPython gh-128110)."""
    msg = parse(b"To: =?utf-8?q?ab?= =?utf-8?q?cd?= <x@example.org>\r\n\r\n")
    return bool(msg["To"].addresses[0].display_name == "abcd")


def write_list(workspace: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    with open(workspace / "recipients" / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["email", "first_name", "name"])
        out.writerows(rows)


@pytest.mark.usefixtures("ledger_url")
@pytest.mark.parametrize("kind", ["words", "one-word", "non-ascii"])
def test_a_thousand_character_name_blocks_nobody(workspace: Path, kind: str) -> None:
    outbox_is_delivery(workspace)
    name = long_name(kind)
    rows = [(f"p{i}@example.org", f"P{i}", f"Person {i}") for i in range(9)]
    rows.insert(4, ("long@example.org", "Long", name))
    write_list(workspace, "staff", rows)
    folder = workspace / "outbox" / BLOG_KEY

    first = run(workspace, "send", BLOG, "-l", "staff", "--yes")
    assert first.exit_code in (0, 1), first.output
    states = {e: s for _, e, _, s, _ in deliveries(workspace)}
    others = [r[0] for r in rows if r[0] != "long@example.org"]
    assert {e: states[e] for e in others} == dict.fromkeys(others, "sent")
    for e in others:
        assert (folder / f"{e}.eml").is_file()
    if states["long@example.org"] == "sent":
        assert first.exit_code == 0, first.output
        data = (folder / "long@example.org.eml").read_bytes()
        head = data.split(b"\r\n\r\n", 1)[0]
        assert max(len(line) for line in head.split(b"\r\n")) <= 998
        msg = parse(data)
        defects = list(msg.defects) + [d for part in msg.walk() for d in part.defects]
        assert defects == []
        to = msg["To"]
        assert to.defects == ()
        assert [a.addr_spec for a in to.addresses] == ["long@example.org"]
        # The display name as RFC 2047 6.2 reads it (blanks between encoded-words
        # ignored), from the header as written.
        raw = re.search(rb"^To: (.*?)\r\n(?! )", head + b"\r\n", re.M | re.S)
        assert raw, head
        value = raw.group(1).decode("ascii").replace("\r\n ", " ")
        phrase, _, rest = value.rpartition(" ")
        assert rest == "<long@example.org>", value
        assert str(make_header(decode_header(phrase))) == name
        if python_joins_encoded_words_in_addresses():
            assert to.addresses[0].display_name == name
    else:
        assert states["long@example.org"] == "failed", states
        assert first.exit_code == 1, first.output
        assert not (folder / "long@example.org.eml").exists()
        status = run(workspace, "status", BLOG)
        line = next(x for x in status.output.splitlines() if "long@example.org" in x)
        assert re.search(r"long@example\.org: failed after \d+ attempt\(s\): \S", line), line

    # People added after the long row are sent on the next run.
    rows += [(f"late{i}@example.org", f"L{i}", f"Late {i}") for i in range(3)]
    write_list(workspace, "staff", rows)
    again = run(workspace, "send", BLOG, "-l", "staff", "--yes")
    assert again.exit_code == 0, again.output
    assert "Done: 3 emails" in again.output, again.output
    states = {e: s for _, e, _, s, _ in deliveries(workspace)}
    for i in range(3):
        assert states[f"late{i}@example.org"] == "sent"
        assert (folder / f"late{i}@example.org.eml").is_file()


# -- 6. Two people, one file ---------------------------------------------------


PERCENT, AMPERSAND = "a%b@example.org", "a&b@example.org"


def outbox_files(folder: Path) -> dict[str, tuple[str, str]]:
    """File name -> (its To address, its Message-ID), for every .eml file in the folder."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(folder.glob("*.eml")):
        msg = parse(path.read_bytes())
        (address,) = msg["To"].addresses
        found[path.name] = (address.addr_spec, str(msg["Message-ID"]))
    return found


def by_recipient(files: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """To address -> (file name, Message-ID); each address in exactly one file."""
    to = [a for a, _ in files.values()]
    assert len(to) == len(set(to)), f"one address in two files, another in none: {files}"
    return {a: (f, m) for f, (a, m) in files.items()}


def ledger_ids(workspace: Path) -> dict[str, str]:
    return {e: m for _, e, _, _, m in deliveries(workspace)}


@pytest.mark.usefixtures("ledger_url")
def test_two_addresses_that_make_the_same_file_name_get_a_file_each(workspace: Path) -> None:
    outbox_is_delivery(workspace)
    write_list(
        workspace, "pair", [(PERCENT, "A", "Percent Person"), (AMPERSAND, "B", "Amp Person")]
    )
    folder = workspace / "outbox" / BLOG_KEY
    first = run(workspace, "send", BLOG, "-l", "pair", "--yes")
    assert first.exit_code == 0, first.output
    files = by_recipient(outbox_files(folder))
    assert sorted(files) == sorted([PERCENT, AMPERSAND])
    assert files[PERCENT][0] != files[AMPERSAND][0]
    assert {a: m for a, (_, m) in files.items()} == ledger_ids(workspace)

    again = run(workspace, "send", BLOG, "-l", "pair", "--yes", "--resend")
    assert again.exit_code == 0, again.output
    resent = by_recipient(outbox_files(folder))
    assert len(list(folder.glob("*.eml"))) == 2
    assert {a: f for a, (f, _) in resent.items()} == {a: f for a, (f, _) in files.items()}
    assert {a: m for a, (_, m) in resent.items()} == ledger_ids(workspace)
    assert all(resent[a][1] != files[a][1] for a in files)  # each rewritten, with its new id


@pytest.mark.usefixtures("ledger_url")
def test_resending_to_one_of_two_addresses_sharing_a_file_name_leaves_the_others_file(
    workspace: Path,
) -> None:
    """The sharper form of the same: the second run sends only to a&b."""
    outbox_is_delivery(workspace)
    write_list(
        workspace, "pair", [(PERCENT, "A", "Percent Person"), (AMPERSAND, "B", "Amp Person")]
    )
    write_list(workspace, "amp", [(AMPERSAND, "B", "Amp Person")])
    folder = workspace / "outbox" / BLOG_KEY
    first = run(workspace, "send", BLOG, "-l", "pair", "--yes")
    assert first.exit_code == 0, first.output
    files = by_recipient(outbox_files(folder))
    assert sorted(files) == sorted([PERCENT, AMPERSAND])

    again = run(workspace, "send", BLOG, "-l", "amp", "--yes", "--resend")
    assert again.exit_code == 0, again.output
    after = outbox_files(folder)
    percent_file = files[PERCENT][0]
    assert after[percent_file] == (PERCENT, files[PERCENT][1]), (
        f"{percent_file} held {PERCENT}'s message; after a resend to {AMPERSAND} alone it "
        f"holds {after.get(percent_file)}; all files: {after}"
    )
    assert by_recipient(after)[AMPERSAND][1] == ledger_ids(workspace)[AMPERSAND]
    assert ledger_ids(workspace)[AMPERSAND] != files[AMPERSAND][1]


# -- 9. The ledger damaged or deleted ---------------------------------------------


def test_a_damaged_ledger_stops_status_and_send_with_the_way_out_and_is_left_alone(
    workspace: Path,
) -> None:
    garbage = b"This is not a ledger.\x00\xff\xfe" * 300
    path = workspace / "ledger.sqlite"
    path.write_bytes(garbage)
    for args in (
        ["status", BLOG],
        ["send", BLOG, "-l", "managers", "--yes"],
        ["send", BLOG, "-l", "managers", "--transport", "eml", "--yes"],
    ):
        done = subprocess.run(
            subprocess_argv(workspace, *args),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        said = done.stdout + done.stderr
        assert done.returncode == 1, (args, done.returncode, said)
        assert "cannot be read" in said, (args, said)
        assert "newsletter ledger check" in said and "newsletter ledger recover" in said, said
        assert "Traceback" not in said and "Something went wrong inside" not in said, said
        assert path.read_bytes() == garbage, args
    assert not (workspace / "outbox").exists() or list((workspace / "outbox").rglob("*.eml")) == []


def test_a_full_disk_raises_ledger_full_keeps_the_answers_and_writes_them_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.sqlite"
    ledger = SqliteLedger(path)
    everyone = [Planned(f"p{i}@example.org", "a", f"<{i}.x@example.org>") for i in range(400)]
    ledger.snapshot("issue", everyone, Eligibility())
    send_id = ledger.begin("issue", "T", "2025-01-01", ["a"], "smtp")
    (pages,) = ledger._db.execute("PRAGMA page_count").fetchone()
    ledger._db.execute(f"PRAGMA max_page_count = {pages}")
    answer = Outcome("sent", 250, "2.0.0 Ok: queued as " + "Q" * 300)
    answered: list[str] = []
    with pytest.raises(LedgerFull) as caught:
        for p in everyone:
            ledger.mark_sending("issue", p.email, send_id)
            ledger.mark_done("issue", p.email, answer)
            answered.append(p.email)
    assert str(caught.value).startswith("The disk is full"), str(caught.value)
    assert 0 < len(answered) < len(everyone)
    assert ledger.unwritten > 0
    stuck = ledger.unwritten
    on_disk = dict(db_rows(path, "SELECT email, state FROM deliveries"))
    assert sum(1 for e in answered if on_disk[e] == "sent") == len(answered) - stuck
    blocked = everyone[len(answered)].email  # its 'sending' mark was not written
    assert on_disk[blocked] == "pending"

    ledger._db.execute("PRAGMA max_page_count = 1073741823")
    record = ledger.finish(send_id, interrupted=True)  # the next commit
    assert ledger.unwritten == 0
    assert record.sent == len(answered)
    rows = {
        e: (s, c, d)
        for e, s, c, d in db_rows(path, "SELECT email, state, code, detail FROM deliveries")
    }
    for e in answered:
        assert rows[e] == ("sent", 250, answer.text), e
    assert rows[blocked][0] == "pending"
    ledger.close()


# -- 8. Private files -------------------------------------------------------------------


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_the_ledger_and_the_outbox_are_readable_by_their_owner_only(workspace: Path) -> None:
    outbox_is_delivery(workspace)
    old = os.umask(0o022)
    keep: sqlite3.Connection | None = None
    try:
        first = run(workspace, "send", BLOG, "-l", "managers", "--yes")
        assert first.exit_code == 0, first.output
        ledger = workspace / "ledger.sqlite"
        # A reader keeps the -wal file in being while the next send writes to it.
        keep = sqlite3.connect(ledger)
        keep.execute("SELECT COUNT(*) FROM deliveries").fetchone()
        second = run(workspace, "send", BLOG, "-l", "headteachers", "--yes")
        assert second.exit_code == 0, second.output
        wal = workspace / "ledger.sqlite-wal"
        assert wal.exists()
        folder = workspace / "outbox" / BLOG_KEY
        files = sorted(folder.glob("*.eml"))
        assert files
        modes = {
            "ledger.sqlite": mode(ledger),
            "ledger.sqlite-wal": mode(wal),
            "outbox issue folder": mode(folder),
            "eml files": sorted({mode(f) for f in files}),
        }
        assert modes == {
            "ledger.sqlite": "0o600",
            "ledger.sqlite-wal": "0o600",
            "outbox issue folder": "0o700",
            "eml files": ["0o600"],
        }
    finally:
        if keep is not None:
            keep.close()
        os.umask(old)


class DeletingRecorder(Recorder):
    """Records every message; at the ``after``-th, does ``act`` (removes the ledger, say)."""

    def __init__(self, after: int, act: Callable[[], None]) -> None:
        super().__init__()
        self.after, self.act = after, act

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.after:
            self.act()
        return answer


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_ledger_deleted_or_replaced_mid_send_stops_it_and_nothing_is_sent_twice(
    workspace: Path, how: str
) -> None:
    """Item 9: the send stops in words; a deleted ledger is written back from the copy the
    send still had open, a replaced one is saved beside it; the re-run sends only the rest."""
    everyone = people(workspace, 120)
    issue = write_issue(workspace, "note.yaml", title="A note", date="2025-03-07")
    path = workspace / "ledger.sqlite"

    def act() -> None:
        if how == "deleted":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            # Another ledger copied in, with its own journal files (none: it is closed).
            other = workspace / "other.sqlite"
            sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            other.replace(path)

    handler = DeletingRecorder(40, act)
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port, connections=1)
        first = smtp_send(workspace, issue, lst="staff")
        assert first.exit_code == 1, first.output
        said = " ".join(first.output.split())
        if how == "deleted":
            assert "was deleted while this send was running" in said, said
            assert "written back" in said
        else:
            assert "was replaced by another file" in said, said
            saved = list(workspace.glob("ledger.sqlite.from-send-*"))
            assert len(saved) == 1, said
            saved[0].replace(path)  # the user puts this send's record back, as told
        got_first = len(handler.messages)
        assert 40 <= got_first < 120
        again = smtp_send(workspace, issue, lst="staff")
        assert again.exit_code == 0, again.output
    sent_to = [r for _, rcpts, _ in handler.messages for r in rcpts]
    # Everyone once; the one message on its way when the send stopped may come twice.
    assert set(sent_to) == set(everyone)
    assert len(sent_to) - len(set(sent_to)) <= 1, len(sent_to)
