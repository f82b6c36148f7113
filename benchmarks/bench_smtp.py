"""SMTP throughput: our transport against plain smtplib and Postfix's smtp-source.

Starts Postfix's ``smtp-sink`` on 127.0.0.1 (a fresh one per measurement, so
its counter says how many messages arrived) and sends N personalised messages
of about 50 KB, rendered by the message stage (``MessageTemplate``) as
``newsletter send`` does:

* ``smtp_1`` / ``smtp_4``: ``SmtpTransport`` with 1 and 4 connections, no rate
  limit (message bytes sent as they are, MAIL/RCPT/DATA pipelined);
* ``sendmail_1``: the baseline, ``smtplib.SMTP.sendmail`` on one reused
  connection (line-ending and dot-stuffing passes over every message);
* ``sendmail_4``: the same from 4 threads, one connection each;
* ``render``: the message stage alone, rendering the same messages (the
  generator every sender above pulls from);
* ``ceiling_1`` / ``ceiling_4``: ``benchmarks/smtp-ceiling.sh -d``
  (smtp-source into smtp-sink, connections reused), when it is there.

Every result is a ``key=value`` line; ratios against the baseline and the
ceiling are measured in the same run. Run by hand from the repository:

    .venv/bin/python benchmarks/bench_smtp.py [-n 5000] [--size 51200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sender.config import Config, SmtpConfig  # noqa: E402
from sender.message import MessageTemplate  # noqa: E402
from sender.recipient import Recipient  # noqa: E402
from sender.transports import Job, Outcome  # noqa: E402
from sender.transports.smtp import SmtpTransport  # noqa: E402
from sender.variant import Variant  # noqa: E402

CEILING = REPO / "benchmarks" / "smtp-ceiling.sh"
PARAGRAPH = (
    "Our schools have had a busy half term: the careers fair welcomed more than "
    "four hundred students, and the new reading programme is in every primary. "
    'Thank you to everyone who made it happen, {{ first_name | default("colleague") }}.'
)


def sink_path() -> str:
    path = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not os.access(path, os.X_OK):
        sys.exit("smtp-sink not found: apt-get install postfix (or bash scripts/setup-tests.sh)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """smtp-sink on a free loopback port, counting (-c); stopped by its own handle."""

    def __init__(self) -> None:
        self.port = free_port()
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [sink_path(), *user, "-c", f"127.0.0.1:{self.port}", "1000"],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("smtp-sink did not start") from None
                time.sleep(0.02)

    def stop(self) -> int:
        """Stop it; return how many messages it counted."""
        time.sleep(0.1)  # let it print its last counter
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.seek(0)
        counts = re.findall(rb"mesg=(\d+)", self.out.read())
        self.out.close()
        return int(counts[-1]) if counts else 0


def template(size: int) -> MessageTemplate:
    """A newsletter variant whose rendered message is about ``size`` bytes."""
    tmpl = _template(max(1, size // 2 // (len(PARAGRAPH) + 40)))
    got = len(next(jobs(tmpl, 1)).data)
    return _template(max(1, round(len(tmpl.variant.text.split("\n\n")) * size / got)))


def _template(paras: int) -> MessageTemplate:
    html = "<!doctype html><html><body>\n" + "".join(
        f'<p style="margin:0 0 12px;font-family:Arial">{PARAGRAPH}</p>\n' for _ in range(paras)
    )
    html += "</body></html>\n"
    text = "\n\n".join([PARAGRAPH] * paras) + "\n"
    variant = Variant(
        slug="2025-02-13-bench",
        audiences=frozenset(),
        subject="Schools news, 13 February",
        preheader=None,
        html=html,
        text=text,
        fields=frozenset({"first_name"}),
        required=frozenset(),
    )
    config = Config(
        root=REPO,
        sender="Schools News <news@example.org>",
        domain="news.example.org",
        unsubscribe="https://example.org/unsubscribe",
    )
    return MessageTemplate(variant, config, date=datetime(2025, 2, 13, 9, tzinfo=UTC))


def jobs(tmpl: MessageTemplate, n: int) -> Iterator[Job]:
    for i in range(n):
        r = Recipient(
            email=f"person{i}@example.net",
            name=f"Person {i}",
            fields={"email": f"person{i}@example.net", "first_name": f"Person{i}"},
            lists=("all-staff",),
        )
        yield Job(tmpl.envelope(r), tmpl.render(r), key=i)


def timed(n: int, run: Callable[[int], None]) -> tuple[float, int]:
    """Run ``run(port)`` against a fresh sink: messages a second, and how many arrived."""
    sink = Sink()
    try:
        t0 = time.perf_counter()
        run(sink.port)
        wall = time.perf_counter() - t0
    finally:
        got = sink.stop()
    return n / wall, got


def ours(tmpl: MessageTemplate, n: int, connections: int) -> Callable[[int], None]:
    def run(port: int) -> None:
        config = SmtpConfig(
            host="127.0.0.1",
            port=port,
            security="none",
            connections=connections,
            rate=float("inf"),
        )
        transport = SmtpTransport(config, password=None, local_hostname="bench.example")
        outcomes: dict[str, int] = {}
        lock = threading.Lock()

        def done(_job: Job, outcome: Outcome) -> None:
            with lock:
                outcomes[outcome.state] = outcomes.get(outcome.state, 0) + 1

        transport.send_all(
            jobs(tmpl, n), on_start=lambda _job: True, on_done=done, stop=threading.Event()
        )
        if outcomes.get("sent") != n:
            print(f"WARNING: outcomes {outcomes}", file=sys.stderr)

    return run


def sendmail(tmpl: MessageTemplate, n: int, threads: int) -> Callable[[int], None]:
    def run(port: int) -> None:
        source = jobs(tmpl, n)
        lock = threading.Lock()

        def worker() -> None:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example") as smtp:
                while True:
                    with lock:
                        job = next(source, None)
                    if job is None:
                        return
                    smtp.sendmail(job.envelope.sender, [job.envelope.recipient], job.data)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    return run


def ceiling(n: int, connections: int) -> float | None:
    """smtp-source into smtp-sink, connections reused (-d): msgs_per_s, or None."""
    if not os.access(CEILING, os.X_OK):
        return None
    proc = subprocess.run(
        [str(CEILING), "-n", str(n), "-c", str(connections), "-d"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = re.findall(r"msgs_per_s=([\d.]+)", proc.stdout)
    if not found or proc.returncode != 0:
        print(f"WARNING: {CEILING} failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return float(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="messages per measurement")
    parser.add_argument("--size", type=int, default=51200, help="approximate message size")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians reported")
    parser.add_argument("--no-ceiling", action="store_true", help="skip smtp-source")
    args = parser.parse_args()
    n = args.n

    tmpl = template(args.size)
    sample = next(jobs(tmpl, 1)).data
    print(f"n={n} message_bytes={len(sample)} repeat={args.repeat} cpus={os.cpu_count()}")
    with contextlib.suppress(OSError):
        print(f"loadavg_before={os.getloadavg()[0]:.2f}")

    runs: dict[str, Callable[[], float | None]] = {
        "render": lambda: n / _seconds(lambda: sum(1 for _ in jobs(tmpl, n))),
        "sendmail_1": lambda: _checked("sendmail_1", n, timed(n, sendmail(tmpl, n, 1))),
        "sendmail_4": lambda: _checked("sendmail_4", n, timed(n, sendmail(tmpl, n, 4))),
        "smtp_1": lambda: _checked("smtp_1", n, timed(n, ours(tmpl, n, 1))),
        "smtp_4": lambda: _checked("smtp_4", n, timed(n, ours(tmpl, n, 4))),
    }
    if not args.no_ceiling:
        if os.access(CEILING, os.X_OK):
            runs["ceiling_1"] = lambda: ceiling(n, 1)
            runs["ceiling_4"] = lambda: ceiling(n, 4)
        else:
            print(f"ceiling=skipped ({CEILING} not found)")

    # Rounds interleave the measurements, so a busy spell on the machine
    # touches all of them alike; medians damp what is left.
    results: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.repeat):
        for name, run in runs.items():
            rate = run()
            if rate is not None:
                results[name].append(rate)
                print(f"round={r + 1} {name}_msgs_per_s={rate:.0f}", flush=True)

    med = {name: statistics.median(v) for name, v in results.items() if v}
    for name, rate in med.items():
        spread = f"{min(results[name]):.0f}-{max(results[name]):.0f}"
        print(f"{name}_msgs_per_s={rate:.0f} (median; range {spread})")
    for a, b in [
        ("smtp_1", "sendmail_1"),
        ("smtp_4", "sendmail_1"),
        ("smtp_4", "sendmail_4"),
        ("smtp_1", "ceiling_1"),
        ("smtp_4", "ceiling_4"),
    ]:
        if a in med and b in med:
            print(f"ratio_{a}_vs_{b}={med[a] / med[b]:.2f}")
    with contextlib.suppress(OSError):
        print(f"loadavg_after={os.getloadavg()[0]:.2f}")


def _seconds(run: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def _checked(name: str, n: int, result: tuple[float, int]) -> float:
    rate, got = result
    if got != n:
        print(f"WARNING: {name}: the sink counted {got} of {n}", file=sys.stderr)
    return rate


if __name__ == "__main__":
    main()
