"""The loop closed, end to end: an issue sent through SMTP with each person's own
bounces+TOKEN@ envelope sender; three schools' servers bounce it (a real Postfix writes
the DSNs) and one reader unsubscribes by email through the address in List-Unsubscribe;
`newsletter inbox` reads them from a real IMAP server (Dovecot over TLS); the next issue
is not sent to those four, and `newsletter status` says why."""

from __future__ import annotations

import email
import re
import smtplib
import time
from pathlib import Path

import pytest
from conftest import Cli
from mailbox_servers import dovecot, postfix_bouncer
from servers import Recorder, aiosmtpd
from test_send_smtp import use_smtp

FIRST = "newsletters/2025-02-13-steve-kay-blog.yaml"
NEXT = "newsletters/2025-03-13-steve-kay-blog.yaml"
DOMAIN = "riverside.example.org"
LEAVERS = [f"leaver{i}@left.example.org" for i in range(3)]
QUITTER = "quitter@school.example.org"
STAYING = [f"stays{i}@school.example.org" for i in range(4)]
VERP = re.compile(rf"bounces\+([a-z2-7]{{26}})@{re.escape(DOMAIN)}")

pytestmark = [
    pytest.mark.usefixtures("fixed_date", "ledger_url"),  # with either ledger
    pytest.mark.cli(catch_exceptions=False),
    pytest.mark.slow,
]


def next_issue(workspace: Path) -> None:
    text = (workspace / FIRST).read_text(encoding="utf-8")
    text = text.replace("date: 2025-02-13", "date: 2025-03-13").replace(
        "13 February 2025", "13 March 2025"
    )
    (workspace / NEXT).write_text(text, encoding="utf-8")


def send(cli: Cli, issue: str) -> None:
    result = cli("send", cli.workspace / issue, "--list", "staff", "--transport", "smtp", "--yes")
    assert result.exit_code == 0, result.output


def test_bounces_and_an_unsubscribe_stop_the_next_issue(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone = [*LEAVERS, QUITTER, *STAYING]
    (workspace / "recipients" / "staff.csv").write_text(
        "email,first_name\n" + "".join(f"{e},Pat\n" for e in everyone), encoding="utf-8"
    )
    next_issue(workspace)
    first = Recorder()
    with aiosmtpd(first) as port:
        use_smtp(workspace, port)
        send(cli, FIRST)
    sent = {rcpt[0]: (sender, raw) for sender, rcpt, raw in first.messages}
    assert sorted(sent) == sorted(everyone)
    tokens = {}
    for person, (sender, _) in sent.items():
        match = VERP.fullmatch(sender)
        assert match, f"{person}'s copy left with envelope sender {sender}"
        tokens[person] = match.group(1)
    assert len(set(tokens.values())) == len(everyone), "a private address each"

    # The schools' mail servers: left.example.org no longer knows its leavers.
    returned = Recorder()
    with (
        aiosmtpd(returned) as home,
        postfix_bouncer(
            deliver_to=home, hard="left.example.org", soft="full.example.org", home=DOMAIN
        ) as school,
        smtplib.SMTP("127.0.0.1", school.port, timeout=10) as smtp,
    ):
        for person in LEAVERS:
            sender, raw = sent[person]
            smtp.sendmail(sender, [person], raw)
        deadline = time.monotonic() + 30
        while len(returned.messages) < len(LEAVERS) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert sorted(m[1][0] for m in returned.messages) == sorted(sent[p][0] for p in LEAVERS), (
        "each DSN goes back to that person's own bounce address"
    )

    # The reader presses Unsubscribe in a mail program that uses the mailto: of
    # List-Unsubscribe: an email to that address.
    copy = email.message_from_bytes(sent[QUITTER][1])
    mailto = re.search(r"<mailto:([^>?]+)", str(copy["List-Unsubscribe"]))
    assert mailto, copy["List-Unsubscribe"]
    unsubscribe = (
        f"From: {QUITTER}\nTo: {mailto.group(1)}\nSubject: Unsubscribe\n\nUnsubscribe\n"
    ).encode()

    with dovecot() as imap:
        imap.append(*(m[2] for m in returned.messages), unsubscribe)
        monkeypatch.setenv("NEWSLETTER_INBOX_PASSWORD", imap.password)
        with (workspace / "newsletter.toml").open("a", encoding="utf-8") as toml:
            toml.write(
                f'\n[inbox]\nhost = "127.0.0.1"\nport = {imap.port}\n'
                f'username = "{imap.user}"\nca_file = "{imap.cert.cert}"\n'
            )
        read = cli("inbox")
    assert read.exit_code == 0, read.output
    said = " ".join(read.output.split())
    assert "Hard bounces │ 3 │ 3 no longer sent to" in said, read.output
    assert "Unsubscribe emails │ 1 │ 1 unsubscribed" in said, read.output

    status = cli("status", workspace / FIRST)
    assert status.exit_code == 0, status.output
    assert re.search(r"all lists\s*│(\s*0\s*│){2}\s*8(\s*│\s*0){3}\s*│\s*3\s*│", status.output), (
        status.output
    )

    second = Recorder()
    with aiosmtpd(second) as port:
        use_smtp(workspace, port)
        send(cli, NEXT)
    assert sorted(rcpt[0] for _, rcpt, _ in second.messages) == sorted(STAYING)

    status = cli("status", workspace / NEXT)
    assert status.exit_code == 0, status.output
    said = " ".join(status.output.split())
    assert (
        "4 on these lists are not sent to, as the ledger says "
        "(hard bounce: 3, unsubscribed: 1)" in said
    ), status.output
