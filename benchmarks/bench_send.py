"""End-to-end send speed: ``newsletter send`` against smtp-source, into two receivers.

Issue 16's measurements, in one run. A temporary workspace (the repository's
newsletter.toml, templates/ and newsletters/, plus generated lists of N
fictional people) is planned once with ``plan_send``. Each measurement then
sends everyone, over C connections, into a receiver of its own started for it:

* ``sink``: Postfix's ``smtp-sink`` on 127.0.0.1, which answers and keeps nothing;
* ``postfix``: a throwaway Postfix (``durable_postfix.py``) that writes each
  message to its queue with an fsync before it answers, then discards it, as
  a real mail server keeps what it takes: the fair anchor for a sender that
  keeps a durable record.

The designs, each counted by what arrived:

* ``smtp_source``: Postfix's ``smtp-source -d -s C``, the same count, the mean
  size of our messages: the anchor;
* ``smtp_source_same_bytes``: the same with ``-F``, sending one of our messages
  (the one nearest the mean size) as it is, so the receiver parses the same
  MIME for both (measured: within the spread of the generated body's rate);
* ``ours_group_commit``: ``sender.send.send`` as the CLI calls it (snapshot,
  then each message marked ``sending`` before it goes and its answer recorded,
  ``synchronous=FULL``), the ledger's marks from all connections riding
  shared commits: what ships;
* ``ours_per_message``: the same, with each mark its own FULL commit, the
  connections taking turns (the ledger before group commit, for comparison);
* ``ours_ledger_off``: the same transport fed the same messages (made lazily,
  as ``send`` does) with no ledger at all.

The transport is the one ``newsletter send`` builds from the workspace's
config: [smtp] with C connections, ``rate = 0``, no TLS, no login. The
workspace sends without private unsubscribe tokens (the repository's
[unsubscribe] and bounce address are left out), so that all four send the same
messages and the ledger's cost is the ledger's alone.

With ``--eml``, the ``.eml`` outbox too, into a folder on this disk: ``ours_eml``
(``send`` as ``--transport eml`` runs it, ledger and all), its transport fed the
same messages with no ledger, and a plain Python loop writing the same files
(same names and bytes, temporary file then rename, mode 0600).

Rounds interleave every (receiver, connections, design) in a rotated order,
and medians (with their range) are reported, because the machine is shared.
Targets (issue 16), with the ledger: at least 0.85x smtp-source into the
durable Postfix and 0.6x into smtp-sink; also ours at least 10x mailmerge.
``mailmerge`` (the CLI, installed on first use into a throwaway venv in
~/.cache/newsletter-bench/mm-venv) sends ``--mailmerge-n`` people into a sink
over its one connection, once per round. Run by hand from the repository, as
root for the durable Postfix (``--receivers sink`` alone otherwise):

    .venv/bin/python benchmarks/bench_send.py [-n 10000] [--repeat 3] [--connections 4,8,16]
        [--receivers sink,postfix] [--eml]
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

from bench_smtp import Sink  # noqa: E402  (smtp-sink on a free port, counting)
from durable_postfix import DurablePostfix, available  # noqa: E402

from sender.ledger import Snapshot, SqliteLedger  # noqa: E402
from sender.ledger.sqlite import now  # noqa: E402
from sender.send import SendPlan, plan_send, send  # noqa: E402
from sender.send.target import target  # noqa: E402
from sender.transports import Job, Outcome  # noqa: E402
from sender.transports.eml import EmlOutbox  # noqa: E402
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
DESIGNS = (
    "smtp_source",
    "smtp_source_same_bytes",
    "ours_group_commit",
    "ours_per_message",
    "ours_ledger_off",
)


# ---------------------------------------------------------------------------
# The workspace


def make_workspace(root: Path, n: int, source: Path = REPO) -> Path:
    """A copy of the repository's workspace files (or ``source``'s, a checkout of
    another commit) with generated lists of n people."""
    ws = root / "workspace"
    ws.mkdir(parents=True)
    shutil.copytree(source / "templates", ws / "templates")
    shutil.copytree(source / "newsletters", ws / "newsletters")
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
    set_port(ws, 25, 4, source)
    return ws


def set_port(ws: Path, port: int, connections: int, source: Path = REPO) -> None:
    """newsletter.toml: the repository's (or ``source``'s), its [smtp] replaced by the
    receiver's. Without private tokens: no bounce address, no [unsubscribe] table."""
    toml = (source / "newsletter.toml").read_text(encoding="utf-8")
    head = toml.split("\n[smtp]", 1)[0]
    head = re.sub(r'(?m)^transport = "eml"', 'transport = "smtp"', head)
    head = re.sub(r"(?m)^bounce_address = .*\n", "", head)
    head = re.sub(r"(?s)\n\[unsubscribe\]\n.*?(?=\n\[|\Z)", "\n", head)
    smtp = SMTP_SECTION.format(port=port, connections=connections)
    (ws / "newsletter.toml").write_text(head + "\n" + smtp, encoding="utf-8")


def transport_for(ws_dir: Path, port: int, connections: int) -> tuple[Workspace, SmtpTransport]:
    """The transport ``newsletter send`` would build for this workspace and receiver."""
    set_port(ws_dir, port, connections)
    ws = Workspace.open(ws_dir)
    return ws, from_config(ws.config.smtp)


def lazy_jobs(plan: SendPlan, ws: Workspace) -> Iterator[Job]:
    """The messages ``send`` makes, in the same way (lazily, per person)."""
    templates = plan.templates(ws)
    for r in plan.recipients:
        template = templates[r.audiences]
        yield Job(template.envelope(r), template.render(r), key=r.email)


def typical_message(plan: SendPlan, ws: Workspace, path: Path, size: int) -> Path:
    """One of our messages, the one nearest the mean size, written for ``smtp-source -F``
    (lines ending in LF: it ends each with CRLF and dot-stuffs them itself)."""
    data = min((job.data for job in lazy_jobs(plan, ws)), key=lambda d: abs(len(d) - size))
    path.write_bytes(data.replace(b"\r\n", b"\n"))
    return path


def mean_size(plan: SendPlan, ws: Workspace, sample: int = 500) -> int:
    step = max(1, len(plan.recipients) // sample)
    sizes = [len(job.data) for k, job in enumerate(lazy_jobs(plan, ws)) if k % step == 0]
    return round(statistics.fmean(sizes))


# ---------------------------------------------------------------------------
# Receivers: a fresh one for every measurement, each counting what it took


class Receiver:
    """``sink`` (smtp-sink) or ``postfix`` (the durable Postfix), started on a free port."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._sink = Sink() if kind == "sink" else None
        self._postfix = DurablePostfix() if kind == "postfix" else None
        self.port = (self._sink or self._postfix).port  # type: ignore[union-attr]

    def stop(self, expected: int) -> int:
        """Stop it; how many messages it took."""
        if self._sink is not None:
            return self._sink.stop()
        assert self._postfix is not None
        return self._postfix.stop(expected)


@dataclass
class Result:
    rate: float
    arrived: int
    expected: int
    warning: str = ""  # something went wrong (not every message arrived)
    info: str = ""


def against(kind: str, expected: int, run: Callable[[int], tuple[str, str]]) -> Result:
    """Time ``run(port)`` against a fresh receiver of ``kind``; count what arrived.

    ``run`` returns (warning, info), either possibly empty."""
    receiver = Receiver(kind)
    try:
        t0 = time.perf_counter()
        warning, info = run(receiver.port)
        wall = time.perf_counter() - t0
    finally:
        arrived = receiver.stop(expected)
    if arrived != expected:
        warning = f"{kind} counted {arrived} of {expected} {warning}".strip()
    return Result(expected / wall, arrived, expected, warning, info)


# ---------------------------------------------------------------------------
# The ledgers


class OneCommitPerMark(SqliteLedger):
    """The ledger as it was before group commit: each ``sending`` mark its own FULL
    commit (with the answers waiting), the connections taking turns for it."""

    def mark_sending(self, issue: str, email: str, send_id: int) -> bool:
        with self._lock:
            return self._commit_answers([(send_id, now(), issue, email, send_id)])[0]


class TimedLedger(SqliteLedger):
    """SqliteLedger adding up the seconds spent in each method (waits included).

    Times summed over the worker threads: with 4 connections, seconds in
    mark_sending + mark_done can exceed the wall time.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.seconds: dict[str, float] = {}
        self.commits = self.marks = 0  # group commits holding marks, and the marks in them
        self._tlock = threading.Lock()

    def _commit_answers(self, marks: Sequence[tuple[object, ...]] = ()) -> list[bool]:
        if marks:
            self.commits += 1  # under the ledger's lock
            self.marks += len(marks)
        return super()._commit_answers(marks)

    def _timed(self, name: str, t0: float) -> None:
        dt = time.perf_counter() - t0
        with self._tlock:
            self.seconds[name] = self.seconds.get(name, 0.0) + dt

    def snapshot(self, *args: Any, **kwargs: Any) -> Snapshot:
        t0 = time.perf_counter()
        try:
            return super().snapshot(*args, **kwargs)
        finally:
            self._timed("snapshot", t0)

    def mark_sending(self, issue: str, email: str, send_id: int) -> bool:
        t0 = time.perf_counter()
        try:
            return super().mark_sending(issue, email, send_id)
        finally:
            self._timed("mark_sending", t0)

    def mark_done(self, issue: str, email: str, outcome: Outcome) -> None:
        t0 = time.perf_counter()
        super().mark_done(issue, email, outcome)
        self._timed("mark_done", t0)


LEDGERS: dict[str, Callable[[Path], SqliteLedger]] = {
    "ours_group_commit": SqliteLedger,
    "ours_per_message": OneCommitPerMark,
    "timed": TimedLedger,
}


# ---------------------------------------------------------------------------
# Measurements: each returns messages a second into its own fresh receiver


def ours_ledger_on(
    kind: str, ws_dir: Path, plan: SendPlan, folder: Path, connections: int, ledger_kind: str
) -> Result:
    n = len(plan.recipients)

    def run(port: int) -> tuple[str, str]:
        ws, transport = transport_for(ws_dir, port, connections)
        path = folder / f"ledger-{time.monotonic_ns()}.sqlite"
        ledger = LEDGERS[ledger_kind](path)
        try:
            where = target(ws, plan, "smtp")
            report = send(plan, ws, transport, where, ledger=ledger, archive=False)
        finally:
            ledger.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        info = ""
        if isinstance(ledger, TimedLedger):
            info = " ".join(f"ledger_{k}_s={v:.2f}" for k, v in ledger.seconds.items())
            info += f" commits={ledger.commits} marks_per_commit="
            info += f"{ledger.marks / max(ledger.commits, 1):.2f}"
        return _tally(report.outcomes, n), info

    return against(kind, n, run)


def ours_ledger_off(kind: str, ws_dir: Path, plan: SendPlan, connections: int) -> Result:
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

    return against(kind, n, run)


def _tally(outcomes: dict[str, int], n: int) -> str:
    return "" if outcomes.get("sent") == n else f"outcomes {outcomes}"


def smtp_source(
    kind: str, n: int, size: int, connections: int, message: Path | None = None
) -> Result:
    """smtp-source: a generated body of ``size`` bytes, or ``message`` (one of ours) as it is."""
    path = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    body = ("-F", str(message)) if message else ("-l", str(size))

    def run(port: int) -> tuple[str, str]:
        proc = subprocess.run(
            [
                path,
                *("-s", str(connections), "-m", str(n), *body, "-d"),
                *("-f", "news@example.org", "-t", "person@example.net", "-M", "bench.example"),
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        return _failed(proc), ""

    return against(kind, n, run)


# ---------------------------------------------------------------------------
# The .eml outbox: ours, its transport alone, and a plain loop writing the same files


def eml_ours(ws_dir: Path, plan: SendPlan, folder: Path) -> float:
    """``send`` into the outbox, as ``newsletter send --transport eml`` (ledger and all)."""
    ws = Workspace.open(ws_dir)
    out, path = folder / "outbox", folder / "ledger-eml.sqlite"
    ledger = SqliteLedger(path)
    try:
        t0 = time.perf_counter()
        send(plan, ws, EmlOutbox(out), target(ws, plan, "eml"), ledger=ledger, archive=False)
        took = time.perf_counter() - t0
    finally:
        ledger.close()
    return len(plan.recipients) / took


def eml_transport(ws_dir: Path, plan: SendPlan, folder: Path) -> float:
    """The outbox transport fed the same messages, with no ledger."""
    ws = Workspace.open(ws_dir)
    t0 = time.perf_counter()
    EmlOutbox(folder / "outbox").send_all(
        lazy_jobs(plan, ws),
        on_start=lambda _job: True,
        on_done=lambda _job, _outcome: None,
        stop=threading.Event(),
    )
    return len(plan.recipients) / (time.perf_counter() - t0)


def eml_plain(ws_dir: Path, plan: SendPlan, folder: Path) -> float:
    """A plain Python loop writing the same files: the same names, bytes and mode."""
    ws = Workspace.open(ws_dir)
    names = EmlOutbox(folder / "outbox")
    (folder / "outbox").mkdir(mode=0o700)
    t0 = time.perf_counter()
    for job in lazy_jobs(plan, ws):
        path = names.path_for(job.envelope.recipient)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(job.data)
        os.replace(tmp, path)
    return len(plan.recipients) / (time.perf_counter() - t0)


EML = {"ours_eml": eml_ours, "eml_transport_no_ledger": eml_transport, "plain_loop": eml_plain}


def eml_rounds(ws_dir: Path, plan: SendPlan, root: Path, repeat: int) -> None:
    """The three, interleaved, each into a new folder (deleted after), medians."""
    rates: dict[str, list[float]] = {name: [] for name in EML}
    names = list(EML)
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            folder = root / f"eml-{name}-{r}"
            folder.mkdir()
            try:
                rates[name].append(EML[name](ws_dir, plan, folder))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(f"round={r + 1} eml {name}_msgs_per_s={rates[name][-1]:.0f}", flush=True)
    plain = statistics.median(rates["plain_loop"])
    print("--- the .eml outbox (msgs/s, range over the rounds)")
    for name, got in rates.items():
        print(f"eml {name}={spread(got)} ratio_to_plain_loop={statistics.median(got) / plain:.2f}x")


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

    return against("sink", n, run)


# ---------------------------------------------------------------------------


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return "n/a"


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def report(results: dict[tuple[str, int, str], list[float]], receivers: list[str]) -> None:
    """Medians, each ratio and the ledger's cost, then the same as a Markdown table."""
    med = {key: statistics.median(v) for key, v in results.items() if v}
    print("--- medians (msgs/s, range over the rounds)")
    rows = []
    for conns in sorted({c for _, c, design in med if design in DESIGNS}):
        for design in DESIGNS:
            cells = [f"{conns}", design]
            for kind in receivers:
                got = results.get((kind, conns, design)) or []
                if not got:
                    cells += ["", ""]
                    continue
                anchor = med.get((kind, conns, "smtp_source"))
                ratio = f"{med[(kind, conns, design)] / anchor:.2f}x" if anchor else ""
                off = med.get((kind, conns, "ours_ledger_off"))
                cost = ""
                if design.startswith("ours_") and design != "ours_ledger_off" and off:
                    cost = f", ledger cost {(1 - med[(kind, conns, design)] / off) * 100:.0f}%"
                print(f"{kind} connections={conns} {design}={spread(got)} {ratio}{cost}")
                cells += [spread(got), ratio + cost.replace(", ledger cost", "; cost")]
            rows.append(cells)
    print("--- as a table")
    heads = ["connections", "design"]
    for kind in receivers:
        heads += [f"into {kind}: msgs/s", "ratio to smtp-source; ledger cost"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="people (messages per send)")
    parser.add_argument("--connections", default="4,8,16", help="comma-separated connection counts")
    parser.add_argument(
        "--receivers", default="sink,postfix", help="sink, postfix, both, or none (with --eml)"
    )
    parser.add_argument("--designs", default=",".join(DESIGNS), help="which designs to run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians reported")
    parser.add_argument("--mailmerge-n", type=int, default=1000, help="messages for mailmerge")
    parser.add_argument("--no-mailmerge", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--breakdown", action="store_true", help="extra runs timing the ledger's methods"
    )
    parser.add_argument(
        "--eml", action="store_true", help="also the .eml outbox against a plain loop"
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.connections.split(",")]
    receivers = [r for r in args.receivers.split(",") if r != "none"]
    designs = [d for d in DESIGNS if d in args.designs.split(",")]
    if "postfix" in receivers and (why := available()):
        print(f"receiver postfix skipped: {why}")
        receivers.remove("postfix")

    root = Path(tempfile.mkdtemp(prefix="bench-send-"))
    try:
        ws_dir = make_workspace(root, args.n)
        ws = Workspace.open(ws_dir)
        t0 = time.perf_counter()
        plan = plan_send(ws, ws_dir / ISSUE, [name for name, _ in LISTS])
        plan_s = time.perf_counter() - t0
        n = len(plan.recipients)
        size = mean_size(plan, ws)
        typical = typical_message(plan, ws, root / "typical.eml", size)
        print(
            f"n={n} variants={len(plan.variants)} mean_message_bytes={size} "
            f"connections={counts} receivers={receivers} repeat={args.repeat} "
            f"cpus={os.cpu_count()} plan_s={plan_s:.2f}"
        )
        print(f"loadavg_before={loadavg()}", flush=True)

        def measure(kind: str, conns: int, design: str) -> Callable[[], Result]:
            if design == "smtp_source":
                return lambda: smtp_source(kind, n, size, conns)
            if design == "smtp_source_same_bytes":
                return lambda: smtp_source(kind, n, size, conns, typical)
            if design == "ours_ledger_off":
                return lambda: ours_ledger_off(kind, ws_dir, plan, conns)
            return lambda: ours_ledger_on(kind, ws_dir, plan, root, conns, design)

        runs: dict[tuple[str, int, str], Callable[[], Result]] = {
            (kind, conns, design): measure(kind, conns, design)
            for conns in counts
            for kind in receivers
            for design in designs
        }
        exe = None if args.no_mailmerge else mailmerge_exe()
        if exe is not None and "sink" in receivers:
            mm_n = min(args.mailmerge_n, n)
            mm_folder = mailmerge_folder(root, plan, mm_n, size)
            print(f"mailmerge_n={mm_n} mailmerge_message_bytes~{mailmerge_size(exe, mm_folder)}")
            runs[("sink", 1, "mailmerge")] = lambda: mailmerge(exe, mm_folder, mm_n)

        results: dict[tuple[str, int, str], list[float]] = {key: [] for key in runs}
        keys = list(runs)
        for r in range(args.repeat):
            shift = (r * len(keys)) // max(args.repeat, 1)
            for key in keys[shift:] + keys[:shift]:
                res = runs[key]()
                results[key].append(res.rate)
                warn = f" WARNING: {res.warning}" if res.warning else ""
                kind, conns, design = key
                print(
                    f"round={r + 1} {kind} connections={conns} {design}_msgs_per_s="
                    f"{res.rate:.0f} loadavg={loadavg()}{warn}",
                    flush=True,
                )
        for kind in receivers if args.breakdown else []:
            for conns in counts:
                # Not counted above: the ledger's share, method by method, and how many
                # marks each group commit held.
                res = ours_ledger_on(kind, ws_dir, plan, root, conns, "timed")
                warn = f" WARNING: {res.warning}" if res.warning else ""
                print(
                    f"breakdown {kind} connections={conns} msgs_per_s={res.rate:.0f} "
                    f"{res.info}{warn}",
                    flush=True,
                )

        report(results, receivers)
        if args.eml:
            eml_rounds(ws_dir, plan, root, args.repeat)
        mm = results.get(("sink", 1, "mailmerge"))
        ours = [results.get((kind, c, "ours_group_commit")) for kind in ("sink",) for c in counts]
        if mm and ours and ours[0]:
            ratio = statistics.median(ours[0]) / statistics.median(mm)
            print(f"mailmerge_msgs_per_s={spread(mm)} ratio_vs_mailmerge={ratio:.1f}x (>= 10x)")
        print(f"loadavg_after={loadavg()}")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
