"""newsletter send: a summary first, a confirmation, then one email per person."""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import click
from email_validator import EmailNotValidError, validate_email
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from ..audiences import audience_key
from ..clock import Clock, when_words
from ..ledger import IssueHeld, LedgerError
from ..ledger.location import is_database
from ..problems import ProblemsError
from ..send import (
    Eligibility,
    NotOnList,
    PreflightError,
    SendPlan,
    ledger_states,
    open_transport_for,
    plan_send,
    ready,
    send,
    send_test,
    stand_in,
    standing,
)
from ..send.quota import Quota
from ..send.session import preflight
from ..send.target import Target, Unclear, target
from ..send.workers import Workforce, needs_database
from ..transports import Outcome, Transport, TransportError
from ..workspace import Workspace
from .common import EXIT_USAGE, InputError, console, console_err, open_workspace, show_problems
from .schedule import countdown, parse_at, show_schedule
from .send_report import show_result, show_summary
from .status import show_workers


@click.command("send")
@click.argument("issue", type=click.Path(path_type=Path))
@click.option(
    "--list",
    "-l",
    "lists",
    multiple=True,
    metavar="NAME",
    help="A list to send to (a CSV file in recipients/, without .csv). Repeat for several; "
    "someone on several lists gets one email with the sections of all of them.",
)
@click.option(
    "--transport",
    type=click.Choice(["eml", "smtp"]),
    help="eml: one .eml file per person in the outbox folder (no server needed). "
    "smtp: send through the server in [smtp]. Default: [send] transport in newsletter.toml.",
)
@click.option(
    "--test-to",
    multiple=True,
    metavar="EMAIL",
    help="Send a test copy to this address instead (repeatable): the real email of a list, "
    "subject starting [TEST], never counted as sent.",
)
@click.option("--as-list", metavar="NAME", help="With --test-to: whose version to send.")
@click.option(
    "--as-recipient",
    metavar="EMAIL",
    help="With --test-to: personalise as this person (default: the list's first).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Send to the next N people only.")
@click.option(
    "--resend",
    is_flag=True,
    help="Also send to people who already got this issue (with new Message-IDs, so their "
    "mail server does not drop it as a copy).",
)
@click.option("--retry-failed", is_flag=True, help="Try again people whose email failed.")
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Send again to people whose message the server took but never answered for "
    "(it may have arrived: they may get it twice).",
)
@click.option(
    "--same-as",
    metavar="ISSUE",
    help="This file is the issue the ledger knows by this name (shown by 'newsletter "
    "history'): carry on its send, even though the file's date changed.",
)
@click.option(
    "--new-issue",
    is_flag=True,
    help="This file is a new issue, even though an earlier issue of the same file name was "
    "not sent to everyone.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="When the relay's daily quota ([smtp] per_day) is reached, wait until it has room "
    "again and carry on, as often as it takes (the issue stays held meanwhile).",
)
@click.option(
    "--at",
    "at",
    metavar="'YYYY-MM-DD HH:MM'",
    help="Confirm now, then wait and send at this time (this computer's time zone); a line "
    "counts down, Ctrl-C cancels.",
)
@click.option(
    "--print-schedule",
    is_flag=True,
    help="With --at: print a systemd timer and a cron line that send at that time on a "
    "server, instead of waiting here.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Send from N processes on this computer, sharing the work through the PostgreSQL "
    "ledger ([send] ledger = \"postgresql://…\"); 'newsletter worker ISSUE' on another "
    "computer joins in.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option("--dry-run", is_flag=True, help="Show who would get what, and send nothing.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Show the SMTP conversation (passwords hidden)."
)
@click.pass_context
def command(
    ctx: click.Context,
    issue: Path,
    lists: tuple[str, ...],
    transport: str | None,
    test_to: tuple[str, ...],
    as_list: str | None,
    as_recipient: str | None,
    limit: int | None,
    resend: bool,
    retry_failed: bool,
    retry_unknown: bool,
    same_as: str | None,
    new_issue: bool,
    wait: bool,
    at: str | None,
    print_schedule: bool,
    workers: int | None,
    yes: bool,
    dry_run: bool,
    verbose: bool,
) -> None:
    """Send an issue to one or more lists: one personal email per person.

    First shows a summary (people per list, people on several lists counted
    once, suppressed addresses, rows skipped as invalid, how many versions,
    a sample of recipients, where the emails go) and asks you to confirm.
    Anything wrong in the issue or a missing personal field stops the send
    before a single email goes.

    Every email is recorded as it goes (in the ledger, ledger.sqlite). If a
    send is interrupted, run the same command again: it carries on with the
    people not yet sent, and nobody gets the issue twice unless you say
    --resend. 'newsletter status ISSUE' shows what happened to whom.

    With the eml transport (the default), each email is saved as a .eml file
    under the outbox folder, ready to open in Thunderbird, Apple Mail or
    Outlook. With smtp, the password is read from the environment variable
    named in [smtp] password_env, never from a file.

    \b
    Examples:
      newsletter send newsletters/2025-02-13-steve-kay-blog.yaml --list headteachers
      newsletter send ISSUE.yaml -l headteachers -l managers --dry-run
      newsletter send ISSUE.yaml -l all-staff --transport smtp --limit 500
      newsletter send ISSUE.yaml --test-to me@example.org --as-list headteachers
      newsletter send ISSUE.yaml -l all-staff --transport smtp --at "2026-03-05 08:00"

    With [smtp] per_day set, a send stops cleanly when the relay's quota for
    the last 24 hours is used up, says when the rest can go, and exits with
    status 75; --wait waits for the quota instead.
    """
    ws = open_workspace(ctx)
    clock = Clock()
    when = parse_at(at, clock.now()) if at else None
    if print_schedule and when is None:
        raise click.UsageError("--print-schedule goes with --at: say when to send")
    chosen = transport or ws.config.transport
    if not lists and not test_to:
        raise click.UsageError("say who to send to: --list NAME (or --test-to EMAIL for a test)")
    if workers is not None and not is_database(ws.config.ledger):
        raise click.UsageError(str(needs_database("--workers")))
    if workers is not None and (wait or test_to):
        raise click.UsageError("--workers sends a list now: not with --wait or --test-to")
    if test_to:
        _test(ws, issue, lists, chosen, test_to, as_list, as_recipient, verbose)
        return
    try:
        plan = plan_send(ws, issue, lists)
    except ProblemsError as exc:
        show_problems(exc.problems)
        raise InputError(
            "nothing was sent. Fix the problems above and run the command again."
        ) from None
    rule = Eligibility(resend=resend, retry_failed=retry_failed, retry_unknown=retry_unknown)
    where_to = _target(ctx, ws, plan, chosen, same_as, new_issue, yes or dry_run)
    where = standing(
        plan,
        ledger_states(ws.config, where_to.key),
        rule,
        ledger_states(ws.config, where_to.rehearsal_key) if where_to.scope == "delivery" else None,
    )
    show_summary(ws, plan, chosen, where, rule, where_to, limit=limit)
    if not plan.recipients:
        raise InputError("nobody to send to on these lists; nothing was sent.")
    if where.waiting == 0:
        if where.failed or where.no_answer:
            console.print(
                "Nothing to send: the others already have this issue"
                + (f", and {where.failed} failed before" if where.failed else "")
                + (
                    f", and the server never answered for {where.no_answer}"
                    if where.no_answer
                    else ""
                )
                + ". Use "
                + " or ".join(
                    flag
                    for flag, n in (
                        ("--retry-failed", where.failed),
                        ("--retry-unknown", where.no_answer),
                    )
                    if n
                )
                + " to try those again."
            )
        elif where_to.scope == "rehearsal":
            console.print(
                "Everyone on these lists is already in the outbox; nothing to save. "
                "Use --resend to save them again."
            )
        else:
            console.print(
                "Everyone on these lists already has this issue; nothing to send. "
                "Use --resend to send it again."
            )
        return
    if dry_run:
        console.print("[yellow]Dry run:[/yellow] nothing was sent or recorded.")
        return
    if when is not None and print_schedule:
        command = _schedule_command(ws, issue, lists, transport, where_to, wait)
        show_schedule(when, command, str(ws.root), plan.issue.slug)
        return
    count = where.this_run(limit)
    try:
        # Before asking: a send that cannot go should not be confirmed first.
        ready(plan, ws, where_to.scope)
    except PreflightError as exc:
        raise InputError(f"{exc}\nNothing was sent.") from None
    verb = "Save" if where_to.scope == "rehearsal" else "Send to"
    later = f" at {when_words(when, clock.now())}" if when is not None else ""
    _confirm(ctx, yes, f"{verb} {count} people by {chosen}{later}?")

    carrier = _transport(ws, plan, chosen, verbose, where_to.record.key)
    stop = threading.Event()
    if when is not None:
        _wait_to_send(carrier, when, clock, stop)
    resume = _resume_command(ws, issue, lists, transport, where_to)
    progress = Progress(
        TextColumn("[bold]Sending[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[tally]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tally = {"sent": 0, "deferred": 0, "failed": 0, "unknown": 0}

    def on_snapshot(_snapshot: object, n: int) -> None:
        progress.update(task, total=n)

    def on_progress(counts: dict[str, int]) -> None:  # --workers: the ledger's counts
        tally.update({s: counts.get(s, 0) for s in tally})
        progress.update(
            task,
            completed=sum(tally.values()),
            tally=f"sent {tally['sent']}, deferred {tally['deferred']}, failed {tally['failed']}",
        )

    def on_done(_email: str, outcome: Outcome) -> None:
        tally[outcome.state] += 1
        slowed: int = getattr(carrier, "throttled", 0)  # the server asked us to slow down
        progress.update(
            task,
            advance=1,
            tally=f"sent {tally['sent']}, deferred {tally['deferred']}, failed {tally['failed']}"
            + (f", throttled {slowed}×" if slowed else ""),
            rate=f"{_rate(progress, task):.0f}/s",
        )

    def on_wait(quota: Quota) -> None:
        if quota.opens - clock.now() < timedelta(minutes=1):
            return  # the window slides on as messages sent a day ago leave it
        console.print(
            f"[yellow]The daily quota of {quota.per_day:,} for {escape(quota.relay)} is used "
            f"up[/yellow]; waiting until {when_words(quota.opens, clock.now())} to carry on "
            "(Ctrl-C stops; running the same command later carries on too)."
        )

    previous = signal.getsignal(signal.SIGINT)

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        console_err.print("Stopping after the emails already on their way…")

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGINT, interrupt)
    force = None
    if workers is not None:
        force = Workforce(ws.root, ws.config.resolve(issue), workers, carrier, stop=stop)
        force.on_progress = on_progress
    try:
        with progress:
            task = progress.add_task("send", total=count, tally="", rate="")
            report = send(
                plan,
                ws,
                carrier,
                where_to,
                rule=rule,
                limit=limit,
                stop=stop,
                on_snapshot=on_snapshot,
                on_done=on_done,
                clock=clock,
                wait=wait,
                on_wait=on_wait,
                hand_off=force.hand_off if force is not None else None,
            )
    except PreflightError as exc:
        raise InputError(f"{exc}\nNothing was sent.") from None
    except IssueHeld as exc:
        raise InputError(str(exc)) from None
    except (TransportError, LedgerError) as exc:
        raise InputError(f"{exc}\nTo carry on later: {resume}") from None
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if report.took_over is not None:
        console.print(
            f"[yellow]An earlier send of this issue by {escape(report.took_over.describe())} "
            "had stopped without finishing; this send took over from it.[/yellow]"
        )
    if report.archive is not None:
        show_problems(report.archive.warnings)
        index = report.archive.folder / "index.html"
        console.print(f"Archive updated: {escape(ws.display(index))}")
    show_result(ws, plan, report, chosen, resume, now=clock.now())
    show_workers(report)


def _wait_to_send(carrier: Transport, when: datetime, clock: Clock, stop: threading.Event) -> None:
    """Check the server now (a problem shows while someone is here to fix it), then count
    down to ``when``; Ctrl-C cancels, nothing sent."""
    try:
        preflight(carrier)
    except PreflightError as exc:
        raise InputError(f"{exc}\nNothing was sent.") from None
    previous = signal.getsignal(signal.SIGINT)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    try:
        arrived = countdown(when, clock, stop)
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if not arrived:
        console.print("Cancelled: nothing was sent.")
        raise click.exceptions.Exit(130)


def _schedule_command(
    ws: Workspace,
    issue: Path,
    lists: tuple[str, ...],
    transport: str | None,
    to: Target,
    wait: bool,
) -> list[str]:
    """The command a timer runs: this one, from anywhere, without --at and without asking."""
    program = shutil.which("newsletter") or sys.argv[0]
    parts = shlex.split(_resume_command(ws, issue.resolve(), lists, transport, to))
    wait_too = ["--wait"] if wait else []
    return [program, "--workspace", str(ws.root), *parts[1:], *wait_too, "--yes"]


def _confirm(ctx: click.Context, yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        console.print(
            "Not sending: there is no terminal to ask for confirmation. "
            "Add --yes to send without asking."
        )
        ctx.exit(EXIT_USAGE)
    if not click.confirm(question, default=False):
        console.print("Nothing was sent.")
        ctx.exit(0)


def _transport(
    ws: Workspace, plan: SendPlan, chosen: str, verbose: bool, key: str | None = None
) -> Transport:
    log = (lambda line: console_err.print(f"[dim]smtp:[/dim] {escape(line)}")) if verbose else None
    try:
        return open_transport_for(ws, plan.issue, chosen, key=key, log=log)
    except TransportError as exc:
        raise InputError(str(exc)) from None


def _rate(progress: Progress, task_id: object) -> float:
    task = next(t for t in progress.tasks if t.id == task_id)
    return task.speed or 0.0


def _resume_command(
    ws: Workspace, issue: Path, lists: tuple[str, ...], transport: str | None, to: Target
) -> str:
    parts = ["newsletter", "send", ws.display(issue)]
    for name in lists:
        parts += ["--list", name]
    if transport:
        parts += ["--transport", transport]
    if not to.new and to.was is not None and to.was.date != to.record.date:
        parts += ["--same-as", to.record.key]
    return shlex.join(parts)


def _target(
    ctx: click.Context,
    ws: Workspace,
    plan: SendPlan,
    chosen: str,
    same_as: str | None,
    new_issue: bool,
    no_questions: bool,
) -> Target:
    """Which issue the ledger knows this file as; asks when that cannot be told."""
    if same_as and new_issue:
        raise click.UsageError("say --same-as or --new-issue, not both")
    try:
        return target(ws, plan, chosen, same_as=same_as, new_issue=new_issue)
    except KeyError:
        raise click.BadParameter(
            f"the ledger knows no issue called '{same_as}' ('newsletter history' lists them)",
            param_hint="--same-as",
        ) from None
    except Unclear as unclear:
        earlier = unclear.earlier
        console.print(
            f"[yellow]{escape(ws.display(plan.issue.path))} was sent before as "
            f"“{escape(earlier.title)}” of {earlier.date}, and {unclear.unfinished} people "
            f"have not had that one yet. Now it says “{escape(plan.issue.title)}” of "
            f"{plan.issue.date.isoformat()}.[/yellow]"
        )
        same = shlex.join(["--same-as", earlier.key])
        if no_questions or not sys.stdin.isatty():
            raise InputError(
                "cannot tell whether this is the same issue with its date corrected, or a new "
                f"issue saved over the old file, so nothing was sent. Run the command again "
                f"with {same} (carry on the earlier send) or --new-issue (a new issue: "
                "everyone gets it)."
            ) from None
        if click.confirm("Is this the same issue, with its date corrected?", default=False):
            return target(ws, plan, chosen, same_as=earlier.key)
        if click.confirm("Is it a new issue, to send to everyone?", default=False):
            return target(ws, plan, chosen, new_issue=True)
        console.print("Nothing was sent.")
        ctx.exit(0)
        raise AssertionError("unreachable") from None


def _test(
    ws: Workspace,
    issue: Path,
    lists: tuple[str, ...],
    chosen: str,
    test_to: tuple[str, ...],
    as_list: str | None,
    as_recipient: str | None,
    verbose: bool,
) -> None:
    addresses: list[str] = []
    for address in test_to:
        try:
            valid = validate_email(address, check_deliverability=False, allow_smtputf8=False)
            # Without SMTPUTF8 the ASCII form always exists; the domain in IDNA form.
            addresses.append(valid.ascii_email or valid.normalized)
        except EmailNotValidError as exc:
            raise click.BadParameter(f"'{address}': {exc}", param_hint="--test-to") from None
    names = [as_list] if as_list else list(lists) or ws.lists[:1]
    try:
        plan = plan_send(ws, issue, names)
    except ProblemsError as exc:
        show_problems(exc.problems)
        raise InputError("no test was sent. Fix the problems above first.") from None
    try:
        person = stand_in(plan, as_recipient)
    except NotOnList as exc:
        if as_recipient is None:
            raise InputError(str(exc)) from None
        raise click.BadParameter(str(exc), param_hint="--as-recipient") from None
    key = audience_key(person.audiences)
    console.print(
        f"Sending a [bold]TEST[/bold] of “{escape(plan.issue.title)}”: the {escape(key)} version, "
        f"personalised as {escape(person.email)}, to {escape(', '.join(addresses))}."
    )
    log = (lambda line: console_err.print(f"[dim]smtp:[/dim] {escape(line)}")) if verbose else None
    try:
        report = send_test(plan, ws, addresses, as_recipient=person, kind=chosen, log=log)
    except PreflightError as exc:
        raise InputError(f"{exc}\nNothing was sent.") from None
    except TransportError as exc:
        raise InputError(str(exc)) from None
    for address, outcome in report.results:
        where = f" ({outcome.text})" if chosen == "eml" and outcome.state == "sent" else ""
        console.print(f"  {escape(address)}: {outcome.state}{escape(where)}")
    if report.failures:
        raise InputError("the test did not reach every address; see above.")
