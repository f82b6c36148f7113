"""newsletter inbox: bounces, unsubscribe emails and auto-replies read from a real IMAP
server (Debian's Dovecot over TLS), from mbox and Maildir files, and from DSNs a real
Postfix wrote; each matched to its person through the private bounce address (VERP),
acted on once, and summed up."""

from __future__ import annotations

import mailbox
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TOKEN_SECRET, Cli

from sender import inbox, tokens
from sender.config import load_config
from sender.ledger import Planned, Suppression, TokenRecord, open_ledger
from sender.send import Eligibility

DOMAIN = "riverside.example.org"
BLOG = "2025-02-13-steve-kay-blog"
PEOPLE = {
    "leaver@school.example.org": "headteachers",
    "full@school.example.org": "managers",
    "quitter@school.example.org": "headteachers+managers",
    "away@school.example.org": "all-staff",
}

pytestmark = pytest.mark.cli(catch_exceptions=False)


def sent(workspace: Path, issue: str = BLOG, people: dict[str, str] = PEOPLE) -> dict[str, str]:
    """Record ``issue`` as sent to ``people`` (address -> lists), as a send does: each
    with a Message-ID and a private token in the ledger. The tokens, by address."""
    config = load_config(workspace)
    made = {}
    with open_ledger(config) as ledger:
        names = sorted({n for v in people.values() for n in v.split("+")})
        ledger.begin(issue, issue, issue[:10], names, "smtp", file=f"newsletters/{issue}.yaml")
        ledger.snapshot(
            issue,
            [Planned(e, lists, message_id(e, issue)) for e, lists in people.items()],
            Eligibility(),
        )
        for email, lists in people.items():
            made[email] = tokens.make(TOKEN_SECRET.encode(), email, lists, issue)
        ledger.save_tokens(TokenRecord(t, e, people[e], issue) for e, t in made.items())
    return made


def message_id(email: str, issue: str) -> str:
    return f"<{issue}.{email.partition('@')[0]}@news.{DOMAIN}>"


def original(email: str, issue: str = BLOG, token: str = "") -> bytes:
    """The headers of the newsletter a bounce returns."""
    unsubscribe = f"List-Unsubscribe: <https://news.{DOMAIN}/u/{token}>\n" if token else ""
    return (
        f"From: Schools and Learning News <news@{DOMAIN}>\n"
        f"To: {email}\n"
        f"Subject: Steve Kay's blog, 13 February\n"
        f"Message-ID: {message_id(email, issue)}\n"
        f"X-Newsletter-Issue: {issue}\n"
        f"{unsubscribe}"
        "\n"
    ).encode()


def dsn(
    to: str, recipient: str, status: str, said: str, returned: bytes = b"", *, named: bool = True
) -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    final = f"Final-Recipient: rfc822; {recipient}\nAction: failed\n" if named else ""
    part = (
        "--B\nContent-Description: Undelivered Message Headers\n"
        "Content-Type: text/rfc822-headers\n\n" + returned.decode() + "\n"
        if returned
        else ""
    )
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.school.example.org>\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        f"To: {to}\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        + (f"<{recipient}>: {said}\n\n" if named else "")
        + "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.school.example.org\n\n"
        f"{final}Status: {status}\nDiagnostic-Code: smtp; {said}\n\n" + part + "--B--\n"
    ).encode()


def verp(token: str) -> str:
    return f"bounces+{token}@{DOMAIN}"


def bounce(made: dict[str, str], person: str, status: str, said: str) -> bytes:
    """The DSN of ``person``'s copy, back at their own bounces+TOKEN@ address."""
    return dsn(verp(made[person]), person, status, said)


def unsubscribe_email(token: str, sender: str = "someone@school.example.org") -> bytes:
    return (
        f"From: {sender}\nTo: unsubscribe+{token}@{DOMAIN}\nSubject: unsubscribe\n\n"
        "Please take me off this list.\n"
    ).encode()


def out_of_office(to: str, **headers: str) -> bytes:
    head = "".join(f"{k.replace('_', '-')}: {v}\n" for k, v in headers.items())
    return (
        f"From: Away <away@school.example.org>\nTo: {to}\n{head}\n"
        "I am out of the office until Monday, with no access to email.\n"
    ).encode()


def mbox(path: Path, *messages: bytes) -> Path:
    box = mailbox.mbox(path)
    for raw in messages:
        box.add(raw)
    box.close()
    return path


def suppressions(workspace: Path) -> dict[str, Suppression]:
    with open_ledger(load_config(workspace)) as ledger:
        return {s.email: s for s in ledger.suppressions()}


def bounce_rows(workspace: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(load_config(workspace).resolve(Path("ledger.sqlite"))) as db:
        return db.execute("SELECT email, issue, kind, code FROM bounces ORDER BY id").fetchall()


# -- reading one message -------------------------------------------------------------


class Nobody:
    """A directory that knows no one: what a message says, before matching."""

    def token(self, _token: str) -> TokenRecord | None:
        return None

    def by_message_id(self, _message_id: str) -> tuple[str, str, str] | None:
        return None

    def knows(self, _email: str) -> bool:
        return False

    def issue_named(self, _name: str) -> str:
        return ""

    def last_issue(self, _email: str) -> str:
        return ""


def kinds(raw: bytes) -> list[str]:
    return [r.kind for r in inbox.read(inbox.parse(raw), Nobody())]


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied", "Subject": "Re: Steve Kay's blog"},
        {"Auto-Submitted": "auto-generated", "Subject": "Away"},
        {"X-Autoreply": "yes", "Subject": "Re: news"},
        {"X-Autorespond": "Away", "Subject": "news"},
        {"Precedence": "auto_reply", "Subject": "news"},
        {"Subject": "Automatic reply: Steve Kay's blog, 13 February"},
        {"Subject": "Out of Office: Steve Kay's blog"},
        {"Subject": "Réponse automatique : Steve Kay's blog"},
        {"X-Auto-Response-Suppress": "All", "In-Reply-To": "<x@y>", "Subject": "RE: news"},
    ],
    ids=lambda h: next(iter(h)),
)
def test_out_of_office_replies_are_ignored(headers: dict[str, str]) -> None:
    assert kinds(out_of_office(verp("a" * 26), **headers)) == ["auto-reply"]


def test_a_person_writing_back_is_left_alone() -> None:
    assert kinds(out_of_office(f"news@{DOMAIN}", Subject="Re: Steve Kay's blog")) == ["other"]
    # "no" is what a person's own mail says: not an auto-reply.
    assert kinds(out_of_office(verp("a" * 26), Auto_Submitted="no", Subject="hi")) == ["other"]


@pytest.mark.parametrize(
    ("status", "said", "kind"),
    [
        ("5.1.1", "550 5.1.1 <x@school.example.org>: Recipient address rejected", "hard"),
        ("5.0.0", "550 Requested action not taken: mailbox unavailable", "hard"),
        ("4.2.2", "452 4.2.2 Mailbox full", "soft"),
        ("5.2.2", "552 5.2.2 Mailbox full: over quota", "soft"),  # full is soft, 5.x.x or not
        ("4.4.7", "Message expired: connection timed out", "soft"),
        ("5.7.1", "554 5.7.1 Message rejected as spam", "hard"),
    ],
)
def test_hard_and_soft(status: str, said: str, kind: str) -> None:
    [reading] = inbox.read(
        inbox.parse(dsn("x@y.z", "x@school.example.org", status, said)), Nobody()
    )
    assert (reading.kind, reading.code, reading.address) == (kind, status, "x@school.example.org")
    assert said.split(" ", 1)[1] in reading.detail


# -- acting on it, from mbox and Maildir files ----------------------------------------


def test_mbox_hard_soft_unsubscribe_auto_reply(cli: Cli, workspace: Path) -> None:
    t = sent(workspace)
    box = mbox(
        workspace / "bounces.mbox",
        bounce(t, "leaver@school.example.org", "5.1.1", "550 5.1.1 User unknown"),
        bounce(t, "full@school.example.org", "4.2.2", "452 4.2.2 Mailbox full"),
        unsubscribe_email(t["quitter@school.example.org"]),
        out_of_office(
            verp(t["away@school.example.org"]), Auto_Submitted="auto-replied", Subject="Away"
        ),
        out_of_office(f"news@{DOMAIN}", Subject="Thanks for the blog!"),
    )
    result = cli("inbox", "--path", box)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    for row in (
        "Hard bounces │ 1 │ 1 no longer sent to",
        "Soft bounces │ 1 │ 1 counted",
        "Unsubscribe emails │ 1 │ 1 unsubscribed",
        "Auto-replies │ 1 │ ignored",
        "Other mail │ 1 │ left alone",
    ):
        assert row in out, result.output
    found = suppressions(workspace)
    assert set(found) == {"leaver@school.example.org", "quitter@school.example.org"}
    hard = found["leaver@school.example.org"]
    assert (hard.reason, hard.code, hard.issue, hard.source, hard.lists) == (
        "hard bounce",
        "5.1.1",
        BLOG,
        "inbox",
        "",
    )
    assert "User unknown" in hard.detail
    quit_ = found["quitter@school.example.org"]
    assert (quit_.reason, quit_.lists, quit_.issue, quit_.source) == (
        "unsubscribed",
        "headteachers+managers",
        BLOG,
        "mailto",
    )
    assert bounce_rows(workspace) == [
        ("leaver@school.example.org", BLOG, "hard", "5.1.1"),
        ("full@school.example.org", BLOG, "soft", "4.2.2"),
    ]

    again = cli("inbox", "--path", box)
    assert again.exit_code == 0, again.output
    assert "Read before │ 5 │ nothing to do" in " ".join(again.output.split())
    assert suppressions(workspace) == found
    assert len(bounce_rows(workspace)) == 2


def test_maildir_read_once(cli: Cli, workspace: Path) -> None:
    t = sent(workspace)
    folder = workspace / "Maildir"
    box = mailbox.Maildir(folder)
    box.add(bounce(t, "leaver@school.example.org", "5.1.1", "no such user"))
    box.close()
    assert cli("inbox", "--path", folder).exit_code == 0
    assert set(suppressions(workspace)) == {"leaver@school.example.org"}
    box = mailbox.Maildir(folder)
    box.add(unsubscribe_email(t["quitter@school.example.org"]))
    box.close()
    result = cli("inbox", "--path", folder)
    assert "Read before │ 1 │" in " ".join(result.output.split())
    assert set(suppressions(workspace)) == {
        "leaver@school.example.org",
        "quitter@school.example.org",
    }


def test_soft_bounces_suppress_on_the_third_issue(cli: Cli, workspace: Path) -> None:
    issues = [BLOG, "2025-03-13-steve-kay-blog", "2025-04-10-steve-kay-blog"]
    person = "full@school.example.org"
    bounces = []
    for issue in issues:
        token = sent(workspace, issue, {person: "managers"})[person]
        bounces.append(dsn(verp(token), person, "4.2.2", "452 4.2.2 Mailbox full"))
    # The same issue bouncing twice counts once.
    first = mbox(workspace / "one.mbox", bounces[0], bounces[0].replace(b"Mailbox", b"Mail box"))
    cli("inbox", "--path", first)
    cli("inbox", "--path", mbox(workspace / "two.mbox", bounces[1]))
    assert suppressions(workspace) == {}
    result = cli("inbox", "--path", mbox(workspace / "three.mbox", bounces[2]))
    assert "no longer sent to (3 issues)" in result.output
    found = suppressions(workspace)[person]
    assert (found.reason, found.issue, found.code) == ("soft bounces", issues[2], "4.2.2")


def test_matched_without_verp(cli: Cli, workspace: Path) -> None:
    """A bounce that did not come back to bounces+TOKEN@: the returned copy's token or
    Message-ID, else the address if this newsletter sent to it; a stranger is never acted on."""
    t = sent(workspace)
    plain = f"news@{DOMAIN}"
    box = mbox(
        workspace / "b.mbox",
        # the copy's List-Unsubscribe token
        dsn(
            plain,
            "x@relay.example.org",
            "5.1.1",
            "User unknown",
            original("leaver@school.example.org", token=t["leaver@school.example.org"]),
        ),
        # the copy's Message-ID
        dsn(
            plain,
            "quitter@school.example.org",
            "5.1.1",
            "User unknown",
            original("quitter@school.example.org"),
        ),
        # the address alone: someone we sent to, and a stranger
        dsn(plain, "full@school.example.org", "5.1.1", "User unknown"),
        dsn(plain, "stranger@elsewhere.example.org", "5.1.1", "User unknown"),
    )
    result = cli("inbox", "--path", box)
    assert set(suppressions(workspace)) == {
        "leaver@school.example.org",
        "quitter@school.example.org",
        "full@school.example.org",
    }
    assert {s.issue for s in suppressions(workspace).values()} == {BLOG}
    assert "1 not matched to anyone" in " ".join(result.output.split())
    assert "stranger@elsewhere.example.org" in result.output


def test_verp_matches_a_bounce_that_names_no_one(cli: Cli, workspace: Path) -> None:
    t = sent(workspace)
    raw = dsn(
        verp(t["leaver@school.example.org"]), "", "5.1.1", "550 5.1.1 no such user", named=False
    )
    cli("inbox", "--path", mbox(workspace / "b.mbox", raw))
    assert suppressions(workspace)["leaver@school.example.org"].code == "5.1.1"


def test_forged_unsubscribe_token_does_nothing(cli: Cli, workspace: Path) -> None:
    t = sent(workspace)
    forged = "a" * 26
    assert forged not in t.values()
    result = cli("inbox", "--path", mbox(workspace / "b.mbox", unsubscribe_email(forged)))
    assert suppressions(workspace) == {}
    assert "1 not matched to anyone" in " ".join(result.output.split())


def test_not_a_mailbox(cli: Cli, workspace: Path) -> None:
    (workspace / "folder").mkdir()
    result = cli("inbox", "--path", workspace / "folder")
    assert result.exit_code == 1
    assert "not a Maildir" in result.output


def test_no_mailbox_set(cli: Cli) -> None:
    result = cli("inbox")
    assert result.exit_code == 1
    assert "set [inbox] host" in " ".join(result.output.split())


# -- IMAP: Dovecot over TLS --------------------------------------------------------------


@pytest.fixture
def imap(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from mailbox_servers import dovecot

    with dovecot() as server:
        monkeypatch.setenv("NEWSLETTER_INBOX_PASSWORD", server.password)
        set_inbox(workspace, server.port, server.user, ca_file=str(server.cert.cert))
        yield server


def set_inbox(workspace: Path, port: int, user: str, **more: str) -> None:
    config = workspace / "newsletter.toml"
    text = config.read_text()
    head, _, _ = text.partition("\n[inbox]\n")
    extra = "".join(f'{k} = "{v}"\n' for k, v in more.items())
    config.write_text(
        head + f'\n[inbox]\nhost = "127.0.0.1"\nport = {port}\nusername = "{user}"\n{extra}'
    )


def test_imap_over_tls_marks_what_it_read(cli: Cli, workspace: Path, imap: object) -> None:
    from mailbox_servers import Dovecot

    assert isinstance(imap, Dovecot)
    t = sent(workspace)
    imap.append(
        bounce(t, "leaver@school.example.org", "5.1.1", "550 5.1.1 User unknown"),
        unsubscribe_email(t["quitter@school.example.org"]),
        out_of_office(verp(t["away@school.example.org"]), Subject="Automatic reply: news"),
    )
    result = cli("inbox")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"INBOX of {imap.user} on 127.0.0.1:{imap.port}" in out
    assert "Hard bounces │ 1 │ 1 no longer sent to" in out
    assert "Unsubscribe emails │ 1 │ 1 unsubscribed" in out
    assert "Auto-replies │ 1 │ ignored" in out
    assert imap.password not in result.output
    assert set(suppressions(workspace)) == {
        "leaver@school.example.org",
        "quitter@school.example.org",
    }
    flags = imap.keywords()
    assert len(flags) == 3 and all(b"NewsletterRead" in f for f in flags), flags
    assert not any(b"\\Seen" in f for f in flags), "left unread for the people who read the box"

    # Read once: a second run fetches nothing; a new message is read alone.
    again = cli("inbox")
    assert "What the mailbox held (0 messages)" in again.output
    imap.append(bounce(t, "full@school.example.org", "4.2.2", "Mailbox full"))
    third = cli("inbox")
    assert "Soft bounces │ 1 │ 1 counted" in " ".join(third.output.split())
    assert len(bounce_rows(workspace)) == 2


def test_imap_starttls_and_another_folder(cli: Cli, workspace: Path, imap: object) -> None:
    from mailbox_servers import Dovecot

    assert isinstance(imap, Dovecot)
    t = sent(workspace)
    imap.create("Bounces 2025")
    imap.append(unsubscribe_email(t["quitter@school.example.org"]), folder='"Bounces 2025"')
    set_inbox(
        workspace,
        imap.starttls_port,
        imap.user,
        ca_file=str(imap.cert.cert),
        security="starttls",
        folder="Bounces 2025",
    )
    result = cli("inbox")
    assert result.exit_code == 0, result.output
    assert set(suppressions(workspace)) == {"quitter@school.example.org"}


def test_imap_certificate_not_trusted(cli: Cli, workspace: Path, imap: object) -> None:
    from mailbox_servers import Dovecot

    assert isinstance(imap, Dovecot)
    set_inbox(workspace, imap.port, imap.user)  # no ca_file: the test's own CA is unknown
    result = cli("inbox")
    assert result.exit_code == 1
    assert "certificate that cannot be trusted" in result.output
    assert "[inbox] ca_file" in result.output


def test_imap_wrong_password_never_shown(
    cli: Cli, imap: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbox_servers import Dovecot

    assert isinstance(imap, Dovecot)
    monkeypatch.setenv("NEWSLETTER_INBOX_PASSWORD", "not-the-password-42")
    result = cli("inbox")
    assert result.exit_code == 1
    assert "refused to log in" in result.output
    assert "NEWSLETTER_INBOX_PASSWORD" in result.output
    assert "not-the-password-42" not in result.output
    monkeypatch.delenv("NEWSLETTER_INBOX_PASSWORD")
    result = cli("inbox")
    assert result.exit_code == 1
    assert "NEWSLETTER_INBOX_PASSWORD is not set" in " ".join(result.output.split())


# -- DSNs written by a real Postfix ----------------------------------------------------


def test_postfix_dsns(cli: Cli, workspace: Path, imap: object) -> None:
    """A Postfix that refuses one school's leaver for good and finds another's mailbox
    full bounces the newsletter to each person's bounces+TOKEN@; the DSNs it wrote
    go into the IMAP mailbox, and the inbox reads them as hard and soft."""
    import smtplib
    import time

    from mailbox_servers import Dovecot, postfix_bouncer
    from servers import Recorder, aiosmtpd

    assert isinstance(imap, Dovecot)
    people = {"leaver@gone.example.org": "headteachers", "full@full.example.org": "managers"}
    t = sent(workspace, BLOG, people)
    returned = Recorder()
    with (
        aiosmtpd(returned) as port,
        postfix_bouncer(
            deliver_to=port, hard="gone.example.org", soft="full.example.org", home=DOMAIN
        ) as postfix,
        smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as smtp,
    ):
        for person in people:
            smtp.sendmail(verp(t[person]), [person], original(person, token=t[person]) + b"Hello\n")
        deadline = time.monotonic() + 30
        while len(returned.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert sorted(m[1][0] for m in returned.messages) == sorted(verp(t[p]) for p in people)
    assert {m[0] for m in returned.messages} == {"<>"}, "bounces have an empty sender"
    imap.append(*(m[2] for m in returned.messages))
    result = cli("inbox")
    assert result.exit_code == 0, result.output
    found = suppressions(workspace)
    assert set(found) == {"leaver@gone.example.org"}
    assert (found["leaver@gone.example.org"].code, found["leaver@gone.example.org"].reason) == (
        "5.1.1",
        "hard bounce",
    )
    assert ("full@full.example.org", BLOG, "soft", "4.2.2") in bounce_rows(workspace)
