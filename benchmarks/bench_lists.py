"""How long reading the lists takes, and how much of it is checking the addresses.

A workspace of generated lists (``bench_send.make_workspace``: N people on
all-staff, one in ten also on managers, one in seven on headteachers, so
100,000 people are 124,286 rows) is read with ``sender.lists.select``, as
``send`` and ``lists`` read it: in a process of its own per measurement, the
time taken by ``select`` alone (not the interpreter's start or its imports).

Then the addresses of every row are checked two ways in this process, the
part of the reading the issue singled out: ``email-validator`` on each row
(as the lists were read before issue 16) and ``sender.addresses.Addresses``
(its verdict on each domain kept, the same address never checked twice).
Target (issue 16): reading the lists in half the time, accepting nothing
email-validator rejects (``tests/test_addresses.py`` shows that).

``--tree DIR`` times another checkout's ``select`` in the same run (an older
commit unpacked with ``git archive``, say); rounds alternate between trees.
Run by hand from the repository:

    .venv/bin/python benchmarks/bench_lists.py [-n 100000] [--repeat 5] [--tree DIR ...]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import trees  # noqa: E402
from bench_send import LISTS, make_workspace  # noqa: E402

from sender.addresses import Addresses, EmailNotValidError, check  # noqa: E402

READ = """
import sys, time
from pathlib import Path
import sender
from sender.lists import select

root = Path(sys.argv[1])
started = time.perf_counter()
selection = select(root / "recipients", root, sys.argv[2:])
print(time.perf_counter() - started, len(selection.recipients), Path(sender.__file__).parent.parent)
"""


def read_lists(ws: Path, tree: Path) -> tuple[float, int]:
    """Seconds ``select`` took in a fresh process running ``tree``'s code, and people."""
    names = [name for name, _ in LISTS]
    done = subprocess.run(
        [sys.executable, "-c", READ, str(ws), *names],
        cwd=ws,  # not this repository: its sender/ would come first on the path
        env=trees.environment(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, people, where = done.stdout.split()
    assert Path(where) == tree, f"{tree}'s select was meant, {where}'s ran"
    return float(seconds), int(people)


def addresses(ws: Path) -> list[str]:
    rows: list[str] = []
    for name, _ in LISTS:
        with open(ws / "recipients" / f"{name}.csv", encoding="utf-8") as f:
            rows += [row["email"] for row in csv.DictReader(f)]
    return rows


def checking(checker: Callable[[str], str], rows: list[str]) -> float:
    """Seconds ``checker`` takes over every row's address."""
    started = time.perf_counter()
    for address in rows:
        with contextlib.suppress(EmailNotValidError):
            checker(address)
    return time.perf_counter() - started


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="people")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; medians reported")
    args, checkouts = trees.parse(parser)

    root = Path(tempfile.mkdtemp(prefix="bench-lists-"))
    try:
        ws = make_workspace(root, args.n)
        rows = addresses(ws)
        print(f"people={args.n} rows={len(rows)} repeat={args.repeat} cpus={os.cpu_count()}")
        print(f"loadavg_before={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        reading: dict[Path, list[float]] = {tree: [] for tree in checkouts}
        checks: dict[str, list[float]] = {"email_validator_each_row": [], "addresses": []}
        for r in range(args.repeat):
            for tree in checkouts if r % 2 == 0 else checkouts[::-1]:
                seconds, people = read_lists(ws, tree)
                reading[tree].append(seconds)
                print(f"round={r + 1} tree={tree} select_s={seconds:.2f} people={people}")
            checks["email_validator_each_row"].append(checking(check, rows))
            checks["addresses"].append(checking(Addresses(), rows))
        print(f"loadavg_after={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("--- medians")
        for tree in checkouts:
            print(f"select_s={spread(reading[tree])} tree={tree}")
        if len(checkouts) > 1:
            first, last = (statistics.median(reading[t]) for t in (checkouts[0], checkouts[-1]))
            print(f"ratio_last_to_first={last / first:.2f} (target <= 0.5)")
        for name, values in checks.items():
            print(f"check_addresses_{name}_s={spread(values)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
