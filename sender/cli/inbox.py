"""``newsletter inbox``: read the bounce mailbox, suppress whom it says to, say what it found."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..inbox import SOFT_LIMIT, InboxError, Result, Summary, bounce_local, open_mailbox, process
from ..ledger import open_ledger
from .common import InputError, console, workspace_config

SHOWN_UNMATCHED = 20


@click.command("inbox")
@click.option(
    "--path",
    type=click.Path(exists=True, path_type=Path),
    help="Read this mbox file or Maildir folder instead of the [inbox] mailbox.",
)
@click.pass_context
def command(ctx: click.Context, path: Path | None) -> None:
    """Read the mailbox that bounces and unsubscribe emails come back to, and act on them.

    \b
    - A hard bounce (the address does not exist: 5.x.x, "user unknown")
      stops sending to that person at once.
    - A soft bounce (mailbox full, server down: 4.x.x) is counted; after
      soft bounces on 3 different issues the person is no longer sent to.
    - An unsubscribe email (sent to the unsubscribe+… address in each
      email's List-Unsubscribe) unsubscribes the person from the lists
      that email came through.
    - Out-of-office replies are ignored, and so is any other mail.

    Each message is matched to its person by the private address it came back
    to ([send] bounce_address), or else by the copy of the email it returns.
    The mailbox is [inbox] in newsletter.toml: an IMAP server (host, username,
    password_env, folder) or a local mbox or Maildir (path). Each message is
    read once: running it again changes nothing. `newsletter suppressed` lists
    whom it stopped sending to.

    \b
    Examples:
      newsletter inbox
      newsletter inbox --path ~/Maildir/.Bounces
    """
    config = workspace_config(ctx)
    try:
        with open_mailbox(config, path) as (where, mail), open_ledger(config) as ledger:
            console.print(f"Reading {escape(where)} …")
            summary = process(ledger, mail, bounce_local=bounce_local(config), where=where)
    except InboxError as exc:
        raise InputError(str(exc)) from None
    _show(summary)


def _show(summary: Summary) -> None:
    table = Table(
        title=f"What the mailbox held ({summary.messages} messages)", title_justify="left"
    )
    table.add_column("Found")
    table.add_column("Messages", justify="right")
    table.add_column("What was done")
    hard = summary.count(kind="hard")
    soft = summary.count(kind="soft")
    unsubscribes = summary.count(kind="unsubscribe")
    new = summary.count(outcome="suppressed")
    table.add_row(
        "Hard bounces",
        str(hard),
        _done(summary.count(kind="hard", outcome="suppressed"), "no longer sent to")
        + _unmatched(summary, "hard"),
    )
    table.add_row(
        "Soft bounces",
        str(soft),
        _done(summary.count(kind="soft", outcome="counted"), "counted")
        + ", "
        + _done(
            summary.count(outcome="suppressed-soft"), f"no longer sent to ({SOFT_LIMIT} issues)"
        )
        + _unmatched(summary, "soft"),
    )
    table.add_row(
        "Unsubscribe emails",
        str(unsubscribes),
        _done(summary.count(kind="unsubscribe", outcome="suppressed"), "unsubscribed")
        + _unmatched(summary, "unsubscribe"),
    )
    table.add_row("Auto-replies", str(summary.count(kind="auto-reply")), "ignored")
    table.add_row("Other mail", str(summary.count(kind="other")), "left alone")
    table.add_row("Read before", str(summary.already_read), "nothing to do")
    console.print(table)

    changed = [
        r for r in summary.results if r.outcome in ("suppressed", "suppressed-soft", "counted")
    ]
    if changed:
        _people(changed)
    unmatched = [r for r in summary.results if r.outcome == "unmatched"]
    if unmatched:
        _unmatched_list(unmatched)
    if new or summary.count(outcome="suppressed-soft"):
        console.print("`newsletter suppressed` lists everyone no longer sent to, and why.")


def _done(n: int, what: str) -> str:
    return f"{n} {what}"


def _unmatched(summary: Summary, kind: str) -> str:
    n = sum(1 for r in summary.results if r.reading.kind == kind and r.outcome == "unmatched")
    already = sum(1 for r in summary.results if r.reading.kind == kind and r.outcome == "already")
    out = f", {already} already suppressed" if already else ""
    return out + (f", {n} not matched to anyone" if n else "")


def _people(results: list[Result]) -> None:
    table = Table(title="People", title_justify="left")
    for name in ("Address", "What", "Code", "Issue", "The server said"):
        table.add_column(name, overflow="fold")
    for r in results:
        reading = r.reading
        if r.outcome == "counted":
            what = f"soft bounce {r.soft_count} of {SOFT_LIMIT}"
        elif reading.kind == "unsubscribe":
            what = "unsubscribed" + (f" from {reading.lists}" if reading.lists else "")
        elif r.outcome == "suppressed-soft":
            what = "suppressed: soft bounces"
        else:
            what = "suppressed: hard bounce"
        table.add_row(
            escape(reading.email),
            what,
            escape(reading.code),
            escape(reading.issue),
            escape(reading.detail[:120]),
        )
    console.print(table)


def _unmatched_list(results: list[Result]) -> None:
    console.print(
        f"[yellow]{len(results)} not matched to anyone this newsletter sent to[/yellow] "
        "(nothing was done about them; look at them in the mailbox):"
    )
    for r in results[:SHOWN_UNMATCHED]:
        reading = r.reading
        about = reading.address or "no address in it"
        console.print(
            f"  {escape(reading.kind)} from {escape(reading.sender or '?')}: "
            f"{escape(reading.subject[:80])} ({escape(about)})"
        )
    if len(results) > SHOWN_UNMATCHED:
        console.print(f"  … and {len(results) - SHOWN_UNMATCHED} more")
