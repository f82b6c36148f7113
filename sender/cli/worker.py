"""newsletter worker: join a send in progress, from this computer, with the shared ledger."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click
from rich.markup import escape

from ..ledger import LedgerError
from ..problems import ProblemsError
from ..send import PreflightError
from ..send.workers import LEASE, work
from ..transports import Outcome, TransportError
from .common import InputError, console, console_err, open_workspace, show_problems


@click.command("worker")
@click.argument("issue", type=click.Path(path_type=Path))
@click.option("--send-id", type=int, hidden=True, help="The run to join (send --workers).")
@click.option(
    "--lease",
    type=click.FloatRange(min=0.5),
    default=LEASE,
    show_default=True,
    hidden=True,
    help="Seconds without a heartbeat before others take over this worker's people.",
)
@click.pass_context
def command(ctx: click.Context, issue: Path, send_id: int | None, lease: float) -> None:
    """Join a send of this issue that is running now, and help send it.

    Start the send on one computer with 'newsletter send ISSUE --list NAME
    --workers N' (it needs the PostgreSQL ledger, [send] ledger =
    "postgresql://…"); then, on another computer with the same folder (the
    same newsletter.toml, issue, lists and templates) and the same
    environment variables (passwords, the token secret), run this. It takes
    people a few at a time from the shared queue, sends with its own
    connections within the relay's shared pace and daily quota, and stops when
    nobody is left. If it is stopped or killed, the others carry on with its
    people; any whose message it had handed over are sent again (at most one
    per connection).

    \b
    Example:
      newsletter worker newsletters/2025-02-13-steve-kay-blog.yaml
    """
    ws = open_workspace(ctx)
    stop = threading.Event()
    tally = {"sent": 0, "deferred": 0, "failed": 0, "unknown": 0}
    lock = threading.Lock()

    def on_done(_email: str, outcome: Outcome) -> None:
        with lock:
            tally[outcome.state] += 1

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        console_err.print("Stopping after the emails already on their way…")

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT)
    if in_main:
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
    try:
        report = work(
            ws,
            issue,
            send_id=send_id,
            lease=lease,
            stop=stop,
            on_done=on_done,
            log=lambda line: console.print(escape(line)),
        )
    except ProblemsError as exc:
        show_problems(exc.problems)
        raise InputError("this worker sent nothing. Fix the problems above first.") from None
    except PreflightError as exc:
        raise InputError(f"{exc}\nThis worker sent nothing.") from None
    except (TransportError, LedgerError) as exc:
        raise InputError(str(exc)) from None
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    who = report.worker.describe() if report.worker else "this worker"
    rate = report.sent / report.seconds if report.seconds > 0 else 0.0
    console.print(
        f"Done: {who} sent {tally['sent']}, deferred {tally['deferred']}, failed "
        f"{tally['failed']}, unknown {tally['unknown']} ({rate:.0f}/s)"
        + (" — stopped before the end." if stop.is_set() else ".")
    )
