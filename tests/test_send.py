"""A whole eml send, as the comms officer runs it: summary, files, re-runs; each
test once with the SQLite ledger and once with PostgreSQL (``ledger_url``)."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from conftest import Cli, body

from sender.lists import select
from sender.workspace import Workspace

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"
BRIEFING = "newsletters/2012-07-13-peter-duxbury-briefing.yaml"
ALL_LISTS = ["headteachers", "managers", "all-staff"]


pytestmark = [
    pytest.mark.usefixtures("fixed_date", "ledger_url"),
    pytest.mark.cli(catch_exceptions=False),
]


def list_args(names: list[str]) -> list[str]:
    return [a for n in names for a in ("--list", n)]


def outbox(workspace: Path, issue: str) -> Path:
    return workspace / "outbox" / Path(issue).stem


def parse(path: Path) -> email.message.EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_send_to_every_list_gives_each_person_their_own_sections(cli: Cli, workspace: Path) -> None:
    result = cli("send", workspace / BRIEFING, *list_args(ALL_LISTS), "--yes")
    assert result.exit_code == 0, result.output
    ws = Workspace.open(workspace)
    people = select(ws.config.recipients_dir, workspace, ALL_LISTS).recipients
    files = sorted(outbox(workspace, BRIEFING).glob("*.eml"))
    assert len(files) == len(people) > 150
    by_address = {r.email.lower(): r for r in people}
    for path in files:
        msg = parse(path)
        defects = list(msg.defects) + [d for part in msg.walk() for d in part.defects]
        assert defects == [], path.name
        assert msg.get_content_type() == "multipart/alternative"
        person = by_address[msg["To"].addresses[0].addr_spec.lower()]
        text = body(msg, "plain")
        html = body(msg, "html")
        first = person.fields.get("first_name") or "colleagues"
        assert f"Dear {first}," in text
        assert re.search(rf"Dear {re.escape(first)},", html.replace("&#x27;", "'"))
        heads = "headteachers" in person.lists
        managers = "managers" in person.lists
        assert ("Retiring Headteachers" in text) is heads, path.name
        assert ("Retiring Headteachers" in html) is heads, path.name
        assert ("Leadership, Leadership, Leadership!" in text) is managers, path.name
        assert "Adoption" in text  # for everyone


def test_person_on_two_lists_gets_one_email_with_both_lists_sections(
    cli: Cli, workspace: Path
) -> None:
    result = cli("send", workspace / BRIEFING, "--list", "managers", "--list", "all-staff", "--yes")
    assert result.exit_code == 0, result.output
    ws = Workspace.open(workspace)
    selection = select(ws.config.recipients_dir, workspace, ["managers", "all-staff"])
    both = [r for r in selection.recipients if set(r.lists) == {"managers", "all-staff"}]
    assert both, "the shipped lists overlap"
    files = list(outbox(workspace, BRIEFING).glob("*.eml"))
    assert len(files) == len(selection.recipients)
    msg = parse(outbox(workspace, BRIEFING) / f"{both[0].email.lower()}.eml")
    assert "Leadership, Leadership, Leadership!" in body(msg, "plain")
    assert "on several lists" in result.output


def test_resending_writes_the_same_files_with_new_message_ids(cli: Cli, workspace: Path) -> None:
    assert cli("send", workspace / BLOG, "--list", "headteachers", "--yes").exit_code == 0
    folder = outbox(workspace, BLOG)
    first = {p.name: p.read_bytes() for p in folder.glob("*.eml")}
    for path in folder.glob("*.eml"):
        path.unlink()
    result = cli("send", workspace / BLOG, "--list", "headteachers", "--yes", "--resend")
    assert result.exit_code == 0, result.output
    assert "with new Message-IDs" in result.output
    second = {p.name: p.read_bytes() for p in folder.glob("*.eml")}
    assert first.keys() == second.keys() and len(first) > 30
    mid = re.compile(rb"^Message-ID: (\S+)\r\n", re.M)
    for name, data in first.items():
        # A receiver drops a message whose Message-ID it has seen: a resend needs a new one.
        assert mid.findall(data) != mid.findall(second[name])
        assert mid.sub(b"", data) == mid.sub(b"", second[name])


def test_a_second_send_skips_everyone_who_has_it(cli: Cli, workspace: Path) -> None:
    assert cli("send", workspace / BLOG, "--list", "headteachers", "--yes").exit_code == 0
    for path in outbox(workspace, BLOG).glob("*.eml"):
        path.unlink()
    result = cli("send", workspace / BLOG, "--list", "headteachers", "--list", "managers", "--yes")
    assert result.exit_code == 0, result.output
    assert "are already in the outbox and are skipped" in result.output
    written = {p.name for p in outbox(workspace, BLOG).glob("*.eml")}
    managers = (workspace / "recipients" / "managers.csv").read_text(encoding="utf-8")
    assert len(written) == len(managers.strip().splitlines()) - 1
    assert all(name.removesuffix(".eml") in managers.lower() for name in written)


def test_suppressed_people_get_nothing(cli: Cli, workspace: Path) -> None:
    (workspace / "recipients" / "suppressed.csv").write_text(
        "email\nHEAD@oakfield-primary.example.com\n", encoding="utf-8"
    )
    assert cli("send", workspace / BLOG, "--list", "headteachers", "--yes").exit_code == 0
    names = {p.name for p in outbox(workspace, BLOG).glob("*.eml")}
    assert "head@oakfield-primary.example.com.eml" not in names
    assert names


def test_dry_run_writes_nothing(cli: Cli, workspace: Path) -> None:
    result = cli("send", workspace / BLOG, "--list", "headteachers", "--dry-run")
    assert result.exit_code == 0
    assert "Dry run" in result.output and "people in all" in result.output
    assert not (workspace / "outbox").exists()


def test_without_a_terminal_or_yes_it_refuses(cli: Cli, workspace: Path) -> None:
    result = cli("send", workspace / BLOG, "--list", "headteachers")
    assert result.exit_code == 2
    assert "--yes" in result.output
    assert not (workspace / "outbox").exists()


def test_unknown_list_names_the_lists_and_sends_nothing(cli: Cli, workspace: Path) -> None:
    result = cli("send", workspace / BLOG, "--list", "headteacher", "--yes")
    assert result.exit_code == 1
    assert "headteachers" in result.output
    assert not (workspace / "outbox").exists()


def test_a_column_a_list_lacks_stops_the_send_before_anything_is_written(
    cli: Cli, workspace: Path
) -> None:
    """Said where the placeholder is written and which list lacks the column: the fix is
    in the issue (a default), not in the spreadsheet's rows."""
    issue = workspace / BLOG
    text = issue.read_text(encoding="utf-8")
    issue.write_text(
        text.replace(
            'greeting: Dear {{ first_name | default("colleagues") }},',
            "greeting: Dear {{ school }},",
        ),
        encoding="utf-8",
    )
    assert "{{ school }}" in issue.read_text(encoding="utf-8")
    result = cli("send", workspace / BLOG, "--list", "headteachers", "--list", "managers", "--yes")
    assert result.exit_code == 1
    assert re.search(
        r"newsletters/2025-02-13-steve-kay-blog\.yaml:\d+: error: the greeting: \{\{ school \}\} "
        r"has no default, and managers, which it goes to, has no 'school' column",
        result.output,
    ), result.output
    assert not (workspace / "outbox").exists()


def test_markup_in_a_name_shows_literally(cli: Cli, workspace: Path) -> None:
    (workspace / "recipients" / "tiny.csv").write_text(
        'email,first_name,name\nbob@example.org,<b>Bob</b> & Co,"<b>Bob</b> & Co"\n',
        encoding="utf-8",
    )
    assert cli("send", workspace / BLOG, "--list", "tiny", "--yes").exit_code == 0
    msg = parse(outbox(workspace, BLOG) / "bob@example.org.eml")
    html = body(msg, "html")
    assert "Dear &lt;b&gt;Bob&lt;/b&gt; &amp; Co," in html
    assert "<b>Bob</b>" not in html
    assert "Dear <b>Bob</b> & Co," in body(msg, "plain")
    assert msg["To"].addresses[0].display_name == "<b>Bob</b> & Co"
