"""A relay's daily quota, counted in the ledger across runs and issues, with the time
told by one clock object that the test moves on (nobody sleeps a day); `send --wait`;
and `send --at`: the countdown, Ctrl-C, and the timer printed for a server. Real
aiosmtpd on 127.0.0.1, real ledger files."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import Cli
from servers import Recorder, aiosmtpd
from test_send_smtp import BLOG, people, use_smtp

from sender.clock import DAY, Clock
from sender.ledger import SqliteLedger, open_ledger
from sender.send import Eligibility, SendReport, open_transport_for, plan_send, send
from sender.send.quota import Quota
from sender.send.target import target
from sender.workspace import Workspace

pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]

BRIEFING = "newsletters/2012-07-13-peter-duxbury-briefing.yaml"


@pytest.fixture(autouse=True)
def _token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Private unsubscribe links need a secret, where the workspace asks for them."""
    monkeypatch.setenv("NEWSLETTER_TOKEN_SECRET", "quota-tests-0123456789abcdef")


class MovedClock(Clock):
    """The real time moved on by ``ahead``; waiting moves it on at once."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)
        self.waits: list[datetime] = []

    def now(self) -> datetime:
        return super().now() + self.ahead

    def sleep_until(
        self,
        when: datetime,
        stop: threading.Event,
        tick: Callable[[timedelta], None] | None = None,
    ) -> bool:
        self.waits.append(when)
        if tick is not None:
            tick(when - self.now())
        self.ahead += max(when - self.now(), timedelta(0))
        return not stop.is_set()


def run(
    workspace: Path, issue: str, clock: Clock, *, wait: bool = False
) -> tuple[SendReport, list[Quota]]:
    ws = Workspace.open(workspace)
    plan = plan_send(ws, workspace / issue, ["staff"])
    to = target(ws, plan, "smtp")
    told: list[Quota] = []
    transport = open_transport_for(ws, plan.issue, "smtp", key=to.record.key)
    ledger = SqliteLedger(workspace / "ledger.sqlite", clock=clock)  # answers stamped by it
    try:
        report = send(
            plan,
            ws,
            transport,
            to,
            ledger=ledger,
            rule=Eligibility(),
            archive=False,
            clock=clock,
            wait=wait,
            on_wait=told.append,
        )
    finally:
        ledger.close()
    return report, told


def relays(workspace: Path) -> dict[str, tuple[str, str]]:
    db = sqlite3.connect(workspace / "ledger.sqlite")
    try:
        rows = db.execute("SELECT issue, email, state, relay FROM deliveries").fetchall()
    finally:
        db.close()
    return {f"{i}/{e}": (s, r) for i, e, s, r in rows}


def test_the_daily_quota_stops_cleanly_and_carries_over_runs_and_issues(
    workspace: Path,
) -> None:
    people(workspace, 8)
    handler = Recorder()
    clock = MovedClock()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port, per_day=5)
        first, _ = run(workspace, BLOG, clock)
        assert first.sent == 5 and first.quota is not None
        assert not first.interrupted
        quota = first.quota
        assert (quota.per_day, quota.used, quota.relay) == (5, 5, f"127.0.0.1:{port}")
        assert timedelta(hours=23, minutes=59) < quota.opens - clock.now() <= DAY

        clock.ahead = timedelta(hours=3)  # a second run the same day: nothing goes
        second, _ = run(workspace, BLOG, clock)
        assert second.sent == 0 and second.quota is not None
        assert second.quota.opens == quota.opens
        # Another issue through the same relay: the quota is the account's, not the issue's.
        other, _ = run(workspace, BRIEFING, clock)
        assert other.sent == 0 and other.quota is not None

        clock.ahead = quota.opens - Clock().now() + timedelta(minutes=1)  # the next morning
        third, _ = run(workspace, BLOG, clock)
    assert third.sent == 3 and third.quota is None
    recorded = relays(workspace)
    sent = [key for key, (state, _) in recorded.items() if state == "sent"]
    assert len(sent) == 8 and len(handler.messages) == 8
    assert {relay for state, relay in recorded.values() if state == "sent"} == {f"127.0.0.1:{port}"}
    assert sorted(rcpt[0] for _, rcpt, _ in handler.messages) == sorted(people(workspace, 8))


def test_wait_sleeps_until_the_window_opens_and_sends_everyone(workspace: Path) -> None:
    emails = people(workspace, 7)
    handler = Recorder()
    clock = MovedClock()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port, per_day=3)
        report, told = run(workspace, BLOG, clock, wait=True)
    assert report.sent == 7 and report.quota is None
    # 3 now; then, a day later, one more each time one of the first 3 is a day old;
    # the 7th waits for the second day's messages to be a day old.
    assert told[0].used == 3 and clock.waits == [q.opens for q in told]
    assert clock.waits[-1] - clock.waits[0] >= DAY - timedelta(seconds=5)
    assert sorted(rcpt[0] for _, rcpt, _ in handler.messages) == sorted(emails)
    with open_ledger(Workspace.open(workspace).config) as ledger:
        assert not ledger.holders()  # held for the whole wait, released at the end


def test_quota_reached_says_how_many_and_when_with_the_command(cli: Cli, workspace: Path) -> None:
    people(workspace, 8)
    with aiosmtpd(Recorder()) as port:
        use_smtp(workspace, port, per_day=5)
        result = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
        again = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
    assert result.exit_code == 75, result.output
    text = " ".join(result.output.split())
    assert "5 of 8 sent; the rest can go from " in text and " tomorrow" in text
    assert f"newsletter send {BLOG} --list staff --transport smtp --wait" in text
    assert again.exit_code == 75 and "5 of 8 sent" in " ".join(again.output.split())


def test_without_per_day_nothing_is_counted(workspace: Path) -> None:
    people(workspace, 4)
    with aiosmtpd(Recorder()) as port:
        use_smtp(workspace, port)
        report, told = run(workspace, BLOG, MovedClock())
    assert report.sent == 4 and report.quota is None and told == []
    assert {r for _, r in relays(workspace).values()} == {f"127.0.0.1:{port}"}


# ---------------------------------------------------------------------------
# --at


def test_at_a_time_passed_or_unreadable_is_refused(cli: Cli, workspace: Path) -> None:
    people(workspace, 2)
    passed = cli("send", BLOG, "-l", "staff", "--at", "2020-01-01 08:00", "--yes")
    assert passed.exit_code == 2 and "has already passed" in passed.output
    unreadable = cli("send", BLOG, "-l", "staff", "--at", "tomorrow 8am", "--yes")
    assert unreadable.exit_code == 2 and '"2026-03-05 08:00"' in unreadable.output
    alone = cli("send", BLOG, "-l", "staff", "--print-schedule", "--yes")
    assert alone.exit_code == 2 and "--at" in alone.output


def test_at_with_print_schedule_prints_a_timer_and_a_cron_line(cli: Cli, workspace: Path) -> None:
    people(workspace, 2)
    when = (datetime.now() + timedelta(days=30)).replace(hour=8, minute=0, second=0)
    result = cli(
        "send", BLOG, "-l", "staff", "--transport", "smtp", "--at", f"{when:%Y-%m-%d %H:%M}",
        "--print-schedule", "--wait",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"OnCalendar={when:%Y-%m-%d} 08:00:00" in out
    assert f"\n0 8 {when.day} {when.month} * cd " in out
    assert f"{Path(BLOG).name} --list staff --transport smtp --wait --yes" in out
    assert f"--workspace {workspace}" in out and "[Timer]" in out
    assert not (workspace / "ledger.sqlite").exists()  # nothing sent, nothing held


def test_at_waits_with_a_countdown_then_sends(cli: Cli, workspace: Path) -> None:
    emails = people(workspace, 3)
    handler = Recorder()
    soon = (datetime.now() + timedelta(seconds=2)).replace(microsecond=0)
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        result = cli(
            "send", BLOG, "-l", "staff", "--transport", "smtp", "--yes",
            "--at", f"{soon:%Y-%m-%d %H:%M:%S}",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sending at " in result.output and "Ctrl-C cancels" in result.output
    assert datetime.now() >= soon
    assert sorted(rcpt[0] for _, rcpt, _ in handler.messages) == sorted(emails)


def test_ctrl_c_during_the_countdown_cancels_and_nothing_is_sent() -> None:
    from sender.cli.schedule import countdown

    clock = Clock()
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)  # as the SIGINT handler does
    timer.start()
    try:
        started = datetime.now()
        assert countdown(clock.now() + timedelta(hours=2), clock, stop) is False
    finally:
        timer.cancel()
    assert datetime.now() - started < timedelta(seconds=5)
    assert countdown(clock.now() + timedelta(milliseconds=200), clock, threading.Event())
