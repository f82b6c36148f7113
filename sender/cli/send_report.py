"""What newsletter send prints: the summary before a send, and the result after it."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.markup import escape
from rich.table import Table

from ..audiences import audience_key
from ..clock import when_words
from ..send import Eligibility, SendPlan, SendReport, Standing, outbox_folder
from ..send.target import Target
from ..workspace import Workspace
from .common import InputError, console, count, print_table, show_problems

SAMPLE = 5  # people shown as an example in the summary
_SECURITY = {"starttls": "STARTTLS", "tls": "TLS", "none": "unencrypted"}
EXIT_LATER = 75  # EX_TEMPFAIL: stopped cleanly by the daily quota; the rest can go later


def show_summary(
    ws: Workspace,
    plan: SendPlan,
    chosen: str,
    where: Standing,
    rule: Eligibility,
    to: Target,
    *,
    limit: int | None,
) -> None:
    sel = plan.selection
    show_problems(sel.problems)
    if to.was is not None:
        was = to.was
        console.print(
            f"The ledger knows this issue as {escape(to.record.key)}"
            + (f", sent before from {escape(was.file)}" if was.file != to.record.file else "")
            + (f", titled “{escape(was.title)}”" if was.title != to.record.title else "")
            + (f", dated {was.date}" if was.date != to.record.date else "")
            + ": this send carries on from it."
        )
    table = Table(title=f"Sending “{escape(plan.issue.title)}”", title_justify="left")
    for column in ("list", "people", "suppressed", "duplicates", "invalid rows skipped"):
        table.add_column(column, justify="left" if column == "list" else "right")
    for name, report in sel.reports.items():
        table.add_row(
            name,
            str(report.valid),
            str(report.suppressed),
            str(report.duplicates),
            str(report.invalid),
        )
    print_table(table)
    several = sel.on_several
    console.print(
        f"{count(len(plan.recipients), 'person', 'people')} in all"
        + (
            f"; {several} of them {'is' if several == 1 else 'are'} on several lists and "
            f"get{'s' if several == 1 else ''} one email each, with the sections of all "
            "their lists."
            if several
            else "."
        )
    )
    if sel.conflicts:
        n = len(sel.conflicts)
        console.print(
            f"{count(n, 'field')} {'differs' if n == 1 else 'differ'} between lists for the "
            "same person; the list named first wins (see 'newsletter lists')."
        )
    versions = ", ".join(f"{k}: {n}" for k, n in sorted(plan.counts_by_variant().items()))
    console.print(f"{count(len(plan.variants), 'version')}: {escape(versions)}")
    console.print("For example:")
    for r in plan.recipients[:SAMPLE]:
        name = f"{r.name} " if r.name else ""
        console.print(f"  {escape(name)}<{escape(r.email)}>  ({escape(audience_key(r.audiences))})")
    rehearsal = to.scope == "rehearsal"
    if where.already_sent:
        have = "are already in the outbox" if rehearsal else "already have this issue"
        console.print(
            f"{where.already_sent} {have}"
            + (
                ": sending again, with new Message-IDs (--resend)."
                if rule.resend
                else " and are skipped (--resend sends again)."
            )
        )
    if where.rehearsed:
        console.print(
            f"{where.rehearsed} saved to the outbox earlier, not sent: they are sent now."
        )
    if where.no_answer:
        console.print(
            f"[yellow]{where.no_answer} were handed to the mail server, which never answered"
            "[/yellow]; they may have it"
            + (
                ": sending again (--retry-unknown)."
                if rule.retry_unknown
                else ", so they are skipped (--retry-unknown sends again)."
            )
        )
    if where.failed:
        console.print(
            f"{where.failed} failed before"
            + (
                ": trying again."
                if rule.retry_failed
                else " and are skipped (--retry-failed tries again)."
            )
        )
    if where.unknown:
        console.print(
            f"[yellow]{where.unknown} were being sent when an earlier run stopped[/yellow]; the "
            "server's answer is unknown, so they are sent again (they may get it twice)."
        )
    if limit:
        console.print(f"--limit: only the next {limit} are sent this time.")
    if chosen == "eml":
        folder = outbox_folder(ws, plan.issue, to.record.key)
        goes = f"{ws.display(folder)}/ (one .eml file per person)"
        if rehearsal:
            goes += "; a rehearsal: nothing is sent, and a real send later is not held back"
    else:
        goes = ", or if it cannot be used ".join(
            f"the mail server {r.host}:{r.port} ({_SECURITY[r.security]})" for r in ws.config.relays
        )
    console.print(f"Emails go to: {escape(goes)}")


def show_result(
    ws: Workspace,
    plan: SendPlan,
    report: SendReport,
    chosen: str,
    resume: str,
    *,
    now: datetime | None = None,
) -> None:
    outcomes, failures = report.outcomes, report.failures
    rehearsal = report.target is not None and report.target.scope == "rehearsal"
    table = Table(title="Result", title_justify="left")
    columns = ["saved" if rehearsal else "sent", "deferred", "failed"]
    states = ["sent", "deferred", "failed"]
    if outcomes.get("unknown"):
        columns.append("no answer")
        states.append("unknown")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*(str(outcomes.get(s, 0)) for s in states))
    print_table(table)
    if chosen == "eml":
        key = report.target.record.key if report.target else None
        console.print(f"Emails are in {escape(ws.display(outbox_folder(ws, plan.issue, key)))}/")
    for email, outcome in failures[:10]:
        code = f"{outcome.code} " if outcome.code else ""
        console.print(f"  {escape(email)}: {outcome.state}: {escape(code + outcome.text)}")
    if len(failures) > 10:
        console.print(
            f"  … and {len(failures) - 10} more: newsletter status {ws.display(plan.issue.path)}"
        )
    if report.interrupted:
        console.print(f"[yellow]Stopped.[/yellow] To carry on: {escape(resume)}")
        raise click.exceptions.Exit(130)
    unknown = [e for e, o in failures if o.state == "unknown"]
    if unknown:
        console.print(
            f"[yellow]The mail server took {count(len(unknown), 'message')} but never "
            "answered[/yellow]: "
            "they may well have arrived, so they are not sent again by themselves. Check with "
            f"one of them; to send them again anyway: {escape(resume)} --retry-unknown"
        )
    if report.quota is not None:
        quota, total = report.quota, len(plan.recipients)
        sent = min(report.snapshot.already_sent + report.sent, total)
        console.print(
            f"[yellow]{sent:,} of {total:,} sent; the rest can go from "
            f"{when_words(quota.opens, now or datetime.now(UTC))}[/yellow] (the daily quota of "
            f"{quota.per_day:,} messages for {escape(quota.relay)} is used up): "
            f"{escape(resume)} --wait"
        )
        raise click.exceptions.Exit(EXIT_LATER)
    failures = [(e, o) for e, o in failures if o.state != "unknown"]
    if failures:
        deferred = sum(1 for _, o in failures if o.state == "deferred")
        hint = f"{resume}" + (" --retry-failed" if len(failures) > deferred else "")
        raise InputError(
            f"{count(len(failures), 'email')} {'was' if len(failures) == 1 else 'were'} not "
            "delivered. Deferred ones are tried again "
            f"by running: {hint}"
        )
    if rehearsal:
        console.print(
            f"[green]Done:[/green] {count(report.sent, 'email')} saved to the outbox. Nothing was "
            "sent: "
            "this was a rehearsal (\\[send] outbox_is_delivery = true makes the outbox count "
            "as delivery)."
        )
    else:
        console.print(f"[green]Done:[/green] {count(report.sent, 'email')} sent.")
