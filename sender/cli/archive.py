"""newsletter archive / history: the record of what was sent."""

from __future__ import annotations

from collections import Counter

import click
from rich.markup import escape

from ..archive import rebuild
from ..ledger import read_ledger
from .common import console, count, open_workspace, show_problems


@click.command("archive")
@click.pass_context
def command(ctx: click.Context) -> None:
    """Rebuild the archive folder from what was sent.

    For every issue sent (not tests, not dry runs) the archive holds a web
    copy per list, with no personal data (greetings show their default), an
    index of all issues, newest first, an index per list, and Atom feeds
    (feed.xml) that staff can follow. Every link is relative: open
    archive/index.html from disk, or publish the folder at [newsletter]
    web_url, where the emails' "view in browser" links point. Sending updates
    the archive by itself; run this after changing a template or an issue.
    Files that would not change are left untouched.

    \b
    Examples:
      newsletter archive
      newsletter -w ~/newsletters archive
    """
    ws = open_workspace(ctx)
    result = rebuild(ws)
    show_problems(result.warnings)
    console.print(
        f"Archive: {count(len(result.entries), 'issue')} in {escape(ws.display(result.folder))}/ "
        f"({count(len(result.written), 'file')} changed). Open "
        f"{escape(ws.display(result.folder / 'index.html'))} in a browser to look."
    )


@click.command("history")
@click.pass_context
def history(ctx: click.Context) -> None:
    """List every send, oldest first: issue, when, lists, how many sent and failed.

    Each issue shows the file it was sent from and the name the ledger knows it
    by (for --same-as). Copies saved to the outbox as a rehearsal are marked so.
    Test sends are not listed (they are never counted as sent). A send that
    was stopped part-way is marked, and running its command again carries on.

    \b
    Example:
      newsletter history
    """
    ws = open_workspace(ctx)
    with read_ledger(ws.config) as ledger:
        sends = ledger.sends()
        bounced = {s.issue: len(ledger.bounced(s.issue)) for s in sends}
        unsubscribed = Counter(x.issue for x in ledger.suppressions() if x.reason == "unsubscribed")
    if not sends:
        console.print("Nothing has been sent yet.")
        return
    # One block per send rather than a table: readable at any width, piped or not.
    for s in sends:
        rehearsal = s.scope == "rehearsal"
        by = {"eml": "the outbox", "smtp": "the mail server"}.get(s.transport, s.transport)
        if rehearsal:
            by += " (a rehearsal, not sent)"
        stopped = " [yellow](stopped part-way)[/yellow]" if s.interrupted else ""
        console.print(f"{s.started[:10]}  [bold]{escape(s.title)}[/bold]{stopped}")
        console.print(f"    {escape(s.file or '(file not recorded)')}, known as {escape(s.issue)}")
        console.print(
            f"    to {escape(', '.join(s.lists))} by {by}: "
            f"{'saved' if rehearsal else 'sent'} {s.sent}, failed {s.failed}, "
            f"deferred {s.deferred}"
        )
    # The issue's own record, after all its sends: what came back.
    for issue in dict.fromkeys(s.issue for s in sends if s.scope == "delivery"):
        total = sum(s.sent for s in sends if s.issue == issue and s.scope == "delivery")
        back, left = bounced.get(issue, 0), unsubscribed.get(issue, 0)
        if total and (back or left):
            rate = f"{100 * back / total:.1f}%"
            console.print(
                f"{escape(issue)}: {back} bounced ({rate} of {total} sent), {left} unsubscribed"
            )
