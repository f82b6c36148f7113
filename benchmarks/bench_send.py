"""End-to-end send speed: ``newsletter send`` against smtp-source and mailmerge.

The Speed section of issue 5, measured in one run. A temporary workspace (the
repository's newsletter.toml, templates/ and newsletters/, plus generated
lists of N fictional people) is planned once with ``plan_send``, then, against
a fresh Postfix ``smtp-sink`` on 127.0.0.1 for every measurement (its counter
says how many messages arrived):

* ``ours_ledger_on``: ``sender.send.send`` as the CLI calls it: the ledger
  snapshot (SqliteLedger in the temp folder, a new file each round), then
  delivery, each message marked ``sending`` and ``sent``. [smtp] is 4
  connections, ``rate = 0`` (no per-second limit), security none, no login;
  the transport is built by ``from_config`` from the workspace's config.
* ``ours_ledger_off``: the same transport fed the same messages (rendered
  lazily in the generator, as ``send`` does) with no ledger at all.
* ``smtp_source``: Postfix's ``smtp-source -d -s 4``, the same count, the mean
  size of our messages, into the same kind of sink: the ceiling.
* ``mailmerge``: the ``mailmerge`` CLI (pip, installed on first use into a
  throwaway venv in ~/.cache/newsletter-bench/mm-venv), a multipart
  template built from the same issue, ``--mailmerge-n`` people (it is slow).

Rounds interleave the four (each round in a rotated order) and medians are
reported, because the machine is shared. Targets: ours at least 0.7x
smtp-source, the ledger costing under 10%, ours at least 10x mailmerge.
Run by hand from the repository:

    .venv/bin/python benchmarks/bench_send.py [-n 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

from bench_smtp import Sink  # noqa: E402  (smtp-sink on a free port, counting)

from sender.ledger import Eligible, Planned, Snapshot, SqliteLedger  # noqa: E402
from sender.send import SendPlan, plan_send, send  # noqa: E402
from sender.transports import Job, Outcome  # noqa: E402
from sender.transports.smtp import SmtpTransport, from_config  # noqa: E402
from sender.workspace import Workspace  # noqa: E402

ISSUE = "newsletters/2012-07-13-peter-duxbury-briefing.yaml"
# Everyone is on all-staff; some also on managers / headteachers, so the send
# has several variants (4 with the shipped briefing), as a real one would.
LISTS = (("all-staff", 1), ("managers", 10), ("headteachers", 7))
FIRST = ("Amara", "Ben", "Chloé", "Dev", "Eilidh", "Femi", "Gareth", "Hana", "Iwan", "Jo")
LAST = ("Okafor", "Price", "Nowak", "Shah", "MacLeod", "Adeyemi", "Evans", "Sato", "Rhys")
SMTP_SECTION = """
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
connections = {connections}
rate = 0
timeout = 30
"""
MM_CACHE = Path.home() / ".cache" / "newsletter-bench" / "mm-venv"


# ---------------------------------------------------------------------------
# The workspace


def make_workspace(root: Path, n: int) -> Path:
    """A copy of the repository's workspace files with generated lists of n people."""
    ws = root / "workspace"
    ws.mkdir()
    shutil.copytree(REPO / "templates", ws / "templates")
    shutil.copytree(REPO / "newsletters", ws / "newsletters")
    (ws / "recipients").mkdir()
    for name, step in LISTS:
        with open(ws / "recipients" / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["email", "first_name", "name", "team"])
            for i in range(0, n, step):
                first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
                out.writerow(
                    [f"person{i}@staff.example.net", first, f"{first} {last}", f"Team {i % 17}"]
                )
    set_port(ws, 25, 4)
    return ws


def set_port(ws: Path, port: int, connections: int) -> None:
    """newsletter.toml: the repository's, its [smtp] replaced by the sink's."""
    toml = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    head = toml.split("\n[smtp]", 1)[0]
    head = re.sub(r'(?m)^transport = "eml"', 'transport = "smtp"', head)
    smtp = SMTP_SECTION.format(port=port, connections=connections)
    (ws / "newsletter.toml").write_text(head + "\n" + smtp, encoding="utf-8")


def transport_for(ws_dir: Path, port: int, connections: int) -> tuple[Workspace, SmtpTransport]:
    """The transport ``newsletter send`` would build for this workspace and sink."""
    set_port(ws_dir, port, connections)
    ws = Workspace.open(ws_dir)
    return ws, from_config(ws.config.smtp)


def lazy_jobs(plan: SendPlan, ws: Workspace) -> Iterator[Job]:
    """The messages ``send`` makes, in the same way (lazily, per person)."""
    templates = plan.templates(ws)
    for r in plan.recipients:
        template = templates[frozenset(r.lists)]
        yield Job(template.envelope(r), template.render(r), key=r.email)


def mean_size(plan: SendPlan, ws: Workspace, sample: int = 500) -> int:
    step = max(1, len(plan.recipients) // sample)
    sizes = [len(job.data) for k, job in enumerate(lazy_jobs(plan, ws)) if k % step == 0]
    return round(statistics.fmean(sizes))


# ---------------------------------------------------------------------------
# Measurements: each returns messages a second against its own fresh sink


@dataclass
class Result:
    rate: float
    arrived: int
    expected: int
    warning: str = ""  # something went wrong (not every message sent)
    info: str = ""


def against_sink(expected: int, run: Callable[[int], tuple[str, str]]) -> Result:
    """Time ``run(port)`` against a fresh smtp-sink; count what arrived.

    ``run`` returns (warning, info), either possibly empty.
    """
    sink = Sink()
    try:
        t0 = time.perf_counter()
        warning, info = run(sink.port)
        wall = time.perf_counter() - t0
    finally:
        arrived = sink.stop()
    if arrived != expected:
        warning = f"sink counted {arrived} of {expected} {warning}".strip()
    return Result(expected / wall, arrived, expected, warning, info)


class TimedLedger(SqliteLedger):
    """SqliteLedger adding up the seconds spent in each method (lock waits included).

    Times summed over the worker threads: with 4 connections, seconds in
    mark_sending + mark_done can exceed the wall time.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.seconds: dict[str, float] = {}
        self._tlock = threading.Lock()

    def _timed(self, name: str, t0: float) -> None:
        dt = time.perf_counter() - t0
        with self._tlock:
            self.seconds[name] = self.seconds.get(name, 0.0) + dt

    def snapshot(self, issue: str, people: Iterable[Planned], eligible: Eligible) -> Snapshot:
        t0 = time.perf_counter()
        try:
            return super().snapshot(issue, people, eligible)
        finally:
            self._timed("snapshot", t0)

    def mark_sending(self, issue: str, email: str, send_id: int) -> None:
        t0 = time.perf_counter()
        super().mark_sending(issue, email, send_id)
        self._timed("mark_sending", t0)

    def mark_done(self, issue: str, email: str, outcome: Outcome) -> None:
        t0 = time.perf_counter()
        super().mark_done(issue, email, outcome)
        self._timed("mark_done", t0)


def ours_ledger_on(
    ws_dir: Path, plan: SendPlan, folder: Path, connections: int, timed: bool = False
) -> Result:
    n = len(plan.recipients)

    def run(port: int) -> tuple[str, str]:
        ws, transport = transport_for(ws_dir, port, connections)
        path = folder / f"ledger-{time.monotonic_ns()}.sqlite"
        ledger = TimedLedger(path) if timed else SqliteLedger(path)
        try:
            report = send(plan, ws, transport, ledger=ledger, archive=False)
        finally:
            ledger.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        info = ""
        if isinstance(ledger, TimedLedger):
            info = " ".join(f"ledger_{k}_s={v:.2f}" for k, v in ledger.seconds.items())
        return _tally(report.outcomes, n), info

    return against_sink(n, run)


def ours_ledger_off(ws_dir: Path, plan: SendPlan, connections: int) -> Result:
    n = len(plan.recipients)

    def run(port: int) -> tuple[str, str]:
        ws, transport = transport_for(ws_dir, port, connections)
        outcomes: dict[str, int] = {}
        lock = threading.Lock()

        def done(_job: Job, outcome: Outcome) -> None:
            with lock:
                outcomes[outcome.state] = outcomes.get(outcome.state, 0) + 1

        try:
            transport.send_all(
                lazy_jobs(plan, ws),
                on_start=lambda _job: True,
                on_done=done,
                stop=threading.Event(),
            )
        finally:
            transport.close()
        return _tally(outcomes, n), ""

    return against_sink(n, run)


def _tally(outcomes: dict[str, int], n: int) -> str:
    return "" if outcomes.get("sent") == n else f"outcomes {outcomes}"


def smtp_source(n: int, size: int, connections: int) -> Result:
    path = shutil.which("smtp-source") or "/usr/sbin/smtp-source"

    def run(port: int) -> tuple[str, str]:
        proc = subprocess.run(
            [
                path,
                *("-s", str(connections), "-m", str(n), "-l", str(size), "-d"),
                *("-f", "news@example.org", "-t", "person@example.net", "-M", "bench.example"),
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        return _failed(proc), ""

    return against_sink(n, run)


# ---------------------------------------------------------------------------
# mailmerge


def _failed(proc: subprocess.CompletedProcess[str]) -> str:
    return "" if proc.returncode == 0 else f"rc={proc.returncode} {proc.stderr[-300:]}"


def mailmerge_exe() -> Path | None:
    """mailmerge in its own throwaway venv, installed on first use; None if it cannot be."""
    exe = MM_CACHE / "bin" / "mailmerge"
    if exe.exists():
        return exe
    print(f"installing mailmerge into {MM_CACHE} …", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MM_CACHE)], check=True, timeout=300)
        subprocess.run(
            [str(MM_CACHE / "bin" / "pip"), "install", "-q", "mailmerge"],
            check=True,
            timeout=600,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"mailmerge=skipped (could not install it: {exc})")
        return None
    return exe if exe.exists() else None


def mailmerge_folder(root: Path, plan: SendPlan, n: int, size: int) -> Path:
    """Template and database for mailmerge, from the same issue and people.

    The template is one variant's text and HTML as multipart/alternative (its
    placeholders are Jinja, which mailmerge also speaks): the variant whose
    message, base64-encoded as mailmerge sends it, is nearest ``size`` bytes.
    """
    folder = root / "mailmerge"
    folder.mkdir()
    variant = min(
        plan.variants.values(),
        key=lambda v: abs(len((v.html + v.text).encode()) * 4 / 3 - size),
    )
    boundary = "==bench-boundary=="
    (folder / "mailmerge_template.txt").write_text(
        "TO: {{ name }} <{{ email }}>\n"
        f"SUBJECT: {variant.subject}\n"
        "FROM: Riverside Schools and Learning <news@riverside.example.org>\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\n'
        "\n"
        f"--{boundary}\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "\n"
        f"{variant.text}\n"
        f"--{boundary}\n"
        'Content-Type: text/html; charset="utf-8"\n'
        "\n"
        f"{variant.html}\n"
        f"--{boundary}--\n",
        encoding="utf-8",
    )
    with open(folder / "mailmerge_database.csv", "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["email", "name", "first_name"])
        for r in plan.recipients[:n]:
            out.writerow([r.email, r.name, r.fields.get("first_name", "")])
    return folder


def mailmerge_config(folder: Path, port: int) -> None:
    (folder / "mailmerge_server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\n", encoding="utf-8"
    )


def mailmerge_size(exe: Path, folder: Path) -> int:
    """Bytes of one message as mailmerge makes it (a dry run, raw output)."""
    mailmerge_config(folder, 25)
    out = subprocess.run(
        [str(exe), "--dry-run", "--limit", "1", "--output-format", "raw"],
        cwd=folder,
        capture_output=True,
        timeout=120,
    ).stdout
    # Raw output: a '>>> message 1' line, the message, a '>>> message 1 sent' line.
    body = re.split(rb">>> message[^\n]*\n", out)
    return max((len(part) for part in body), default=0)


def mailmerge(exe: Path, folder: Path, n: int) -> Result:
    def run(port: int) -> tuple[str, str]:
        mailmerge_config(folder, port)
        proc = subprocess.run(
            [str(exe), "--no-dry-run", "--no-limit", "--output-format", "raw"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=1800,
        )
        return _failed(proc), ""

    return against_sink(n, run)


# ---------------------------------------------------------------------------


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="people (messages per send)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians reported")
    parser.add_argument("--mailmerge-n", type=int, default=1000, help="messages for mailmerge")
    parser.add_argument("--no-mailmerge", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-breakdown", action="store_true", help="skip the extra run timing the ledger"
    )
    args = parser.parse_args()
    conns = args.connections

    root = Path(tempfile.mkdtemp(prefix="bench-send-"))
    try:
        ws_dir = make_workspace(root, args.n)
        ws = Workspace.open(ws_dir)
        t0 = time.perf_counter()
        plan = plan_send(ws, ws_dir / ISSUE, [name for name, _ in LISTS])
        plan_s = time.perf_counter() - t0
        n = len(plan.recipients)
        size = mean_size(plan, ws)
        print(
            f"n={n} variants={len(plan.variants)} mean_message_bytes={size} "
            f"connections={conns} repeat={args.repeat} cpus={os.cpu_count()} plan_s={plan_s:.2f}"
        )
        print(f"loadavg_before={loadavg()}", flush=True)

        runs: dict[str, Callable[[], Result]] = {
            "smtp_source": lambda: smtp_source(n, size, conns),
            "ours_ledger_on": lambda: ours_ledger_on(ws_dir, plan, root, conns),
            "ours_ledger_off": lambda: ours_ledger_off(ws_dir, plan, conns),
        }
        exe = None if args.no_mailmerge else mailmerge_exe()
        if exe is not None:
            mm_n = min(args.mailmerge_n, n)
            mm_folder = mailmerge_folder(root, plan, mm_n, size)
            print(f"mailmerge_n={mm_n} mailmerge_message_bytes~{mailmerge_size(exe, mm_folder)}")
            runs["mailmerge"] = lambda: mailmerge(exe, mm_folder, mm_n)
        elif args.no_mailmerge:
            print("mailmerge=skipped (--no-mailmerge)")

        results: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(args.repeat):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                res = runs[name]()
                results[name].append(res.rate)
                warn = f" WARNING: {res.warning}" if res.warning else ""
                print(
                    f"round={r + 1} {name}_msgs_per_s={res.rate:.0f} loadavg={loadavg()}{warn}",
                    flush=True,
                )
        if not args.no_breakdown:
            # Not counted above: the ledger's share, method by method.
            res = ours_ledger_on(ws_dir, plan, root, conns, timed=True)
            warn = f" WARNING: {res.warning}" if res.warning else ""
            print(f"breakdown ours_ledger_on_msgs_per_s={res.rate:.0f} {res.info}{warn}")

        med = {name: statistics.median(v) for name, v in results.items() if v}
        print("--- medians")
        for name, rate in med.items():
            lo, hi = min(results[name]), max(results[name])
            print(f"{name}_msgs_per_s={rate:.0f} (range {lo:.0f}-{hi:.0f})")
        on, off = med["ours_ledger_on"], med["ours_ledger_off"]
        print(f"ledger_cost={(1 - on / off) * 100:.1f}% (target < 10%)")
        print(f"ratio_vs_smtp_source={on / med['smtp_source']:.2f}x (target >= 0.7x)")
        print(f"ratio_vs_smtp_source_ledger_off={off / med['smtp_source']:.2f}x")
        if "mailmerge" in med:
            print(f"ratio_vs_mailmerge={on / med['mailmerge']:.1f}x (target >= 10x)")
        print(f"loadavg_after={loadavg()}")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
