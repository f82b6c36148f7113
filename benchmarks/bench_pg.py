"""The PostgreSQL ledger's speed: a whole send with 1, 2 and 4 workers, and claims alone.

Issue 19's figures, in one run. A temporary workspace (the repository's
templates and issues, a generated list of N people, [smtp] with 2 connections
per sender, rate 0, no TLS, no tokens) sends the shipped briefing to everyone,
into a receiver started for each measurement:

* ``sink``: Postfix's ``smtp-sink`` on 127.0.0.1 (answers, keeps nothing);
* ``postfix``: the durable Postfix of benchmarks/durable_postfix.py (queues each
  message with an fsync, then discards it), when it is there and we are root.

The designs, each a real ``newsletter send`` process (planning and process start
are left out: the rate is people over the time from the first answer recorded
to the last, read from the ledger):

* ``no_ledger_W``: W processes, each the same transport fed its share of the
  same messages with no ledger at all (the time from its first answer to the
  last of any): the anchor;
* ``sqlite``: ``send`` with the SQLite ledger (group commit, as shipped), 2
  connections;
* ``pg_W``: ``send --workers W`` with the PostgreSQL ledger, W x 2 connections.

The ledger's cost is 1 - rate / no_ledger rate, in points. Then, with no SMTP
at all, W processes claim the people of a queued run in batches of 8 with
``FOR UPDATE SKIP LOCKED`` (``claims``: what PostgreSQL sustains here), and
again doing each one's whole share of the ledger (claim, mark ``sending``,
record ``sent``; one thread, so no commits overlap).

Targets: pg_1 costs no more than the SQLite ledger + 10 points; claims/s at
least 10x the send rate. By default a throwaway PostgreSQL cluster is started
(tests/pg.py, as the tests do); ``--ledger postgresql://…`` uses a server of
your own instead (an empty database is made per measurement with CREATE
DATABASE, so the role needs CREATEDB). Run by hand:

    .venv/bin/python benchmarks/bench_pg.py [-n 5000] [--repeat 3] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE), str(REPO / "tests")]

from bench_smtp import Sink  # noqa: E402  (smtp-sink on a free port, counting)

ISSUE = "newsletters/2012-07-13-peter-duxbury-briefing.yaml"
LISTS = (("all-staff", 1), ("managers", 10), ("headteachers", 7))
SMTP = """
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
connections = 2
rate = 0
timeout = 30
"""
# One sender of the no-ledger anchor: the transport ``send`` builds, its share of the
# messages made as ``send`` makes them, the time of each answer printed.
NO_LEDGER = """
import sys, time
from sender.send import plan_send
from sender.transports import Job
from sender.transports.smtp import from_config
from sender.workspace import Workspace
import threading
from pathlib import Path
ws = Workspace.open(Path(sys.argv[1])); part, parts = int(sys.argv[2]), int(sys.argv[3])
plan = plan_send(ws, Path(sys.argv[1]) / sys.argv[4], ["all-staff", "managers", "headteachers"])
templates = plan.templates(ws)
people = plan.recipients[part::parts]
def jobs():
    for r in people:
        t = templates[r.audiences]
        yield Job(t.envelope(r), t.render(r), key=r.email)
times = []
t = from_config(ws.config.smtp)
t.check()
print("ready", flush=True)
sys.stdin.readline()
t.send_all(jobs(), on_start=lambda job: True,
           on_done=lambda job, o: times.append((time.time(), o.state)), stop=threading.Event())
print(min(x for x, _ in times), max(x for x, _ in times), sum(s == "sent" for _, s in times))
"""
CLAIMS = """
import sys, time
from sender.ledger.postgres import PostgresLedger
from sender.transports import Outcome
ledger = PostgresLedger(sys.argv[1]); run = int(sys.argv[2]); whole = sys.argv[3] == "whole"
size = int(sys.argv[4])
ledger.join("claims", run, 1)
print("ready", flush=True)
sys.stdin.readline()
start, n = time.time(), 0
while True:
    batch = ledger.claim(run, size)
    if not batch:
        break
    n += len(batch)
    if whole:
        for email, _ in batch:
            ledger.mark_sending("claims", email, run)
            ledger.mark_done("claims", email, Outcome("sent", 250, "2.0.0 Ok"))
ledger.leave()
ledger.close()
print(start, time.time(), n)
"""


def workspace(root: Path, n: int, ledger: str) -> Path:
    ws = root / "ws"
    if ws.exists():
        shutil.rmtree(ws)
    ws.mkdir(parents=True)
    for name in ("templates", "newsletters"):
        shutil.copytree(REPO / name, ws / name)
    (ws / "recipients").mkdir()
    # Everyone on all-staff, some also on managers or headteachers: several versions.
    for name, step in LISTS:
        with open(ws / "recipients" / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["email", "first_name", "name"])
            for i in range(0, n, step):
                out.writerow([f"person{i}@staff.example.net", f"P{i}", f"Person {i}"])
    toml = (REPO / "newsletter.toml").read_text(encoding="utf-8").split("\n[smtp]", 1)[0]
    toml = re.sub(r"(?m)^bounce_address = .*\n", "", toml)
    toml = re.sub(r"(?s)\n\[unsubscribe\]\n.*?(?=\n\[|\Z)", "\n", toml)
    toml = re.sub(r"(?m)^ledger = .*$", f'ledger = "{ledger}"', toml)
    (ws / "newsletter.toml").write_text(toml + SMTP.format(port=25), encoding="utf-8")
    return ws


def set_port(ws: Path, port: int) -> None:
    path = ws / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^port = \d+$", f"port = {port}", text), encoding="utf-8")


@contextlib.contextmanager
def receiver(kind: str) -> Iterator[int]:
    if kind == "sink":
        sink = Sink()
        try:
            yield sink.port
        finally:
            sink.stop()
        return
    from durable_postfix import DurablePostfix

    postfix = DurablePostfix()
    try:
        yield postfix.port
    finally:
        postfix.stop()


def env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)}


def span(stamps: list[str]) -> float:
    times = sorted(datetime.fromisoformat(s).timestamp() for s in stamps)
    return max(times[-1] - times[0], 1e-6)


def newsletter(ws: Path, *args: str) -> None:
    argv = [
        sys.executable,
        "-m",
        "sender",
        "-w",
        str(ws),
        "send",
        ISSUE,
        "-l",
        "all-staff",
        "--transport",
        "smtp",
        "--yes",
        *args,
    ]
    done = subprocess.run(argv, env=env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"send failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")


def sent_stamps_pg(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute("SELECT updated FROM deliveries WHERE state = 'sent'").fetchall()
    return [str(r[0]) for r in rows]


def run_pg(root: Path, n: int, workers: int, port: int, url: str) -> float:
    ws = workspace(root, n, url)
    set_port(ws, port)
    newsletter(ws, "--workers", str(workers))
    stamps = sent_stamps_pg(url)
    assert len(stamps) == n, (len(stamps), n)
    return n / span(stamps)


def run_sqlite(root: Path, n: int, port: int) -> float:
    ws = workspace(root, n, "ledger.sqlite")
    set_port(ws, port)
    newsletter(ws)
    db = sqlite3.connect(ws / "ledger.sqlite")
    stamps = [r[0] for r in db.execute("SELECT updated FROM deliveries WHERE state = 'sent'")]
    db.close()
    assert len(stamps) == n, (len(stamps), n)
    return n / span(stamps)


def together(argvs: list[list[str]]) -> list[str]:
    """Start processes, wait until each says ready, let them go at once; their last lines."""
    procs = [
        subprocess.Popen(a, env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for a in argvs
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a process did not start: {line}")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        return [p.communicate(timeout=3600)[0].strip().splitlines()[-1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def run_no_ledger(root: Path, n: int, workers: int, port: int) -> float:
    ws = workspace(root, n, "ledger.sqlite")
    set_port(ws, port)
    argv = [sys.executable, "-c", NO_LEDGER, str(ws)]
    lines = together([[*argv, str(k), str(workers), ISSUE] for k in range(workers)])
    first = min(float(x.split()[0]) for x in lines)
    last = max(float(x.split()[1]) for x in lines)
    sent = sum(int(x.split()[2]) for x in lines)
    assert sent == n, (sent, n)
    return n / max(last - first, 1e-6)


def run_claims(n: int, workers: int, url: str, whole: bool) -> float:
    """People a second: claimed alone (``SELECT … FOR UPDATE SKIP LOCKED`` in batches of
    8, a worker's batch with 2 connections), or with each one's whole share of the ledger
    (claimed, marked sending, recorded sent, one thread: no commits overlapping)."""
    from sender.ledger import Eligible, Planned
    from sender.ledger.postgres import PostgresLedger

    ledger = PostgresLedger(url)
    everyone: Eligible = lambda _state: True  # noqa: E731
    people = (Planned(f"p{i}@x.example", "a", f"<{i}@x>") for i in range(n))
    ledger.snapshot("claims", people, everyone)
    ledger.hold("claims")
    run = ledger.begin("claims", "Claims", "2026-01-01", ["a"], "smtp")
    ledger.open_run("claims", run, [f"p{i}@x.example" for i in range(n)])
    mode = "whole" if whole else "claim"
    try:
        argv = [sys.executable, "-c", CLAIMS, url, str(run), mode, "8"]
        lines = together([argv for _ in range(workers)])
    finally:
        ledger.release("claims")
        ledger.close()
    first = min(float(x.split()[0]) for x in lines)
    last = max(float(x.split()[1]) for x in lines)
    assert sum(int(x.split()[2]) for x in lines) == n
    return n / (last - first)


class Databases:
    """A fresh database per measurement: on a throwaway cluster, or the server given."""

    def __init__(self, url: str | None) -> None:
        self._stack = contextlib.ExitStack()
        self.url = url
        self.n = 0
        if url is None:
            import pg

            self.cluster: Any = self._stack.enter_context(pg.cluster())

    def fresh(self) -> str:
        if self.url is None:
            return str(self.cluster.url(self.cluster.new_database()))
        import psycopg

        self.n += 1
        name = f"bench_pg_{os.getpid()}_{self.n}"
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def close(self) -> None:
        self._stack.close()


def median(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="people per send")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--ledger", help="postgresql://… of a server of your own")
    parser.add_argument("--receivers", default="sink,postfix")
    args = parser.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    receivers = [r for r in args.receivers.split(",") if r]
    if "postfix" in receivers:
        try:
            from durable_postfix import available

            why = available()
        except ImportError:
            why = "benchmarks/durable_postfix.py is not there"
        if why:
            print(f"(no durable Postfix: {why})")
            receivers.remove("postfix")
    dbs = Databases(args.ledger)
    results: dict[tuple[str, str], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
            root = Path(tmp)
            for round_ in range(args.repeat):
                for kind in receivers:
                    plan: list[tuple[str, Any]] = [("sqlite", None)]
                    plan += [(f"no_ledger_{w}", w) for w in counts]
                    plan += [(f"pg_{w}", w) for w in counts]
                    plan = plan[round_ % len(plan) :] + plan[: round_ % len(plan)]
                    for name, w in plan:
                        with receiver(kind) as port:
                            if name == "sqlite":
                                rate = run_sqlite(root, args.n, port)
                            elif name.startswith("no_ledger"):
                                rate = run_no_ledger(root, args.n, w, port)
                            else:
                                rate = run_pg(root, args.n, w, port, dbs.fresh())
                        results.setdefault((kind, name), []).append(rate)
                        print(
                            f"round {round_ + 1} {kind:7} {name:12} {rate:8,.0f} msgs/s", flush=True
                        )
                for w in counts:
                    for whole in (False, True):
                        rate = run_claims(args.n if whole else 4 * args.n, w, dbs.fresh(), whole)
                        name = f"{'whole' if whole else 'claims'}_{w}"
                        results.setdefault(("claims", name), []).append(rate)
                        print(f"round {round_ + 1} {name:20} {rate:8,.0f} people/s", flush=True)
    finally:
        dbs.close()
    print(f"\n{args.n:,} people, medians (range) of {args.repeat} rounds, messages/s:")
    for kind in receivers:
        print(f"\n{kind}:")
        base = statistics.median(results[(kind, "no_ledger_1")])
        lite = statistics.median(results[(kind, "sqlite")])
        print(
            f"  {'sqlite (1 sender)':22} {median(results[(kind, 'sqlite')]):>24}"
            f"   cost {100 * (1 - lite / base):5.1f} points"
        )
        for w in counts:
            anchor = statistics.median(results[(kind, f"no_ledger_{w}")])
            got = statistics.median(results[(kind, f"pg_{w}")])
            plain, pg = (
                median(results[(kind, f"no_ledger_{w}")]),
                median(results[(kind, f"pg_{w}")]),
            )
            print(f"  {'no ledger, ' + str(w) + ' proc':22} {plain:>24}")
            print(
                f"  {'pg, ' + str(w) + ' worker(s)':22} {pg:>24}"
                f"   cost {100 * (1 - got / anchor):5.1f} points"
            )
        pg1 = 100 * (1 - statistics.median(results[(kind, "pg_1")]) / base)
        limit = 100 * (1 - lite / base) + 10
        print(
            f"  target: pg_1 cost {pg1:.1f} <= sqlite cost + 10 = {limit:.1f}: "
            + ("met" if pg1 <= limit else "NOT met")
        )
    best_send = max(
        statistics.median(v) for (_, name), v in results.items() if name.startswith("pg_")
    )
    print(f"\nthe ledger alone, no SMTP (against the fastest send, {best_send:,.0f}/s):")
    for w in counts:
        for label, name in (("claimed", "claims"), ("whole share", "whole")):
            got = statistics.median(results[("claims", f"{name}_{w}")])
            print(
                f"  {w} process(es), {label:11}: {median(results[('claims', f'{name}_{w}')])}"
                f" people/s = {got / best_send:.1f}x"
            )


if __name__ == "__main__":
    main()
