"""``newsletter suppressed``: who is not sent to, and why; lift one by hand."""

from __future__ import annotations

import csv
import sys
from dataclasses import astuple, fields

import click
from rich.markup import escape
from rich.table import Table

from ..config import Config
from ..ledger import Suppression, open_ledger, read_ledger
from ..lists import SUPPRESSED, read_list, read_suppressed
from ..recipient import address_key
from .common import InputError, console, workspace_config

HAND = "by hand"
HAND_SOURCE = f"recipients/{SUPPRESSED}.csv"


@click.command("suppressed")
@click.option(
    "--reason",
    metavar="TEXT",
    help='Only those suppressed for this reason: "hard bounce", "soft bounces", '
    '"unsubscribed" or "by hand" (the start is enough: --reason hard).',
)
@click.option("--csv", "as_csv", is_flag=True, help="Write them as CSV, to keep or open elsewhere.")
@click.option(
    "--remove",
    metavar="EMAIL",
    help="Send to this address again: lift its suppression (asks first).",
)
@click.option("--yes", "-y", is_flag=True, help="With --remove: do not ask.")
@click.pass_context
def command(
    ctx: click.Context, reason: str | None, as_csv: bool, remove: str | None, yes: bool
) -> None:
    """List everyone who is not sent to, and why: hard bounces, soft bounces on 3
    issues and unsubscribes that `newsletter inbox` and the unsubscribe page
    recorded, and the people in recipients/suppressed.csv (kept by hand).
    --csv adds the mail server's words and where each was learnt.

    \b
    Examples:
      newsletter suppressed
      newsletter suppressed --reason unsubscribed
      newsletter suppressed --csv > suppressed-export.csv
      newsletter suppressed --remove j.smith@riverside.example.org
    """
    config = workspace_config(ctx)
    if remove is not None:
        _remove(config, remove, yes)
        return
    everyone = _everyone(config)
    if reason:
        wanted = reason.strip().casefold()
        everyone = [s for s in everyone if s.reason.casefold().startswith(wanted)]
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([f.name for f in fields(Suppression)])
        writer.writerows(astuple(s) for s in everyone)
        return
    if not everyone:
        console.print(
            "Nobody is suppressed" + (f" for the reason '{escape(reason)}'." if reason else ".")
        )
        return
    table = Table(title=f"Not sent to ({len(everyone)})", title_justify="left")
    for name in ("Address", "Lists", "Why", "Since", "Issue"):
        table.add_column(name, overflow="fold")
    for s in everyone:
        why = " ".join(filter(None, (s.reason, s.code)))
        if s.source == HAND_SOURCE and s.detail:
            why += f": {s.detail}"
        table.add_row(
            escape(s.email),
            escape(s.lists.replace("+", ", ") if s.lists else "all"),
            escape(why),
            escape(s.at[:10]),
            escape(s.issue),
        )
    console.print(table)


def _everyone(config: Config) -> list[Suppression]:
    with read_ledger(config) as ledger:
        recorded = ledger.suppressions()
    return recorded + _by_hand(config)


def _by_hand(config: Config) -> list[Suppression]:
    """The people of recipients/suppressed.csv, with the reason written beside them."""
    keys, _problems = read_suppressed(config.recipients_dir, config.root)
    if not keys:
        return []
    report = read_list(config.recipients_dir / f"{SUPPRESSED}.csv", config.root)
    return [
        Suppression(
            email=address_key(r.email),
            lists="",
            reason=HAND,
            code="",
            detail=r.fields.get("reason", ""),
            issue="",
            source=HAND_SOURCE,
            at="",
        )
        for r in report.recipients
    ]


def _remove(config: Config, address: str, yes: bool) -> None:
    key = address_key(address.strip())
    with read_ledger(config) as reader:
        found = [s for s in reader.suppressions() if s.email == key]
    by_hand = [s for s in _by_hand(config) if s.email == key]
    if not found:
        if by_hand:
            raise InputError(
                f"{address} is in {HAND_SOURCE}, which you keep by hand: delete its row there "
                "to send to it again."
            )
        raise InputError(f"{address} is not suppressed: nothing to lift.")
    for s in found:
        lists = s.lists.replace("+", ", ") if s.lists else "every list"
        since = f" since {s.at[:10]}" if s.at else ""
        console.print(
            f"{escape(s.email)}: {escape(s.reason)} ({escape(lists)}){escape(since)}"
            + (f": {escape(s.detail)}" if s.detail else "")
        )
    if not yes and not click.confirm(
        f"Send to {address} again (lift {len(found)} suppression{'s' if len(found) > 1 else ''})?",
        default=False,
    ):
        console.print("Nothing changed.")
        return
    with open_ledger(config) as ledger:
        lifted = ledger.unsuppress(key)
    console.print(f"Lifted {lifted}: {escape(address)} will be sent to again.")
    if by_hand:
        console.print(
            f"[yellow]It is also in {HAND_SOURCE}[/yellow]: delete its row there too, "
            "or it is still not sent to."
        )
