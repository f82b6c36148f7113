"""Peak memory of the real command for 1,000, 10,000 and 100,000 people.

``newsletter send ISSUE --list all-staff --list managers --list headteachers
--transport eml --yes`` and the same with ``--dry-run``, each a process of its
own in a workspace of generated lists (``bench_send.make_workspace``: everyone
on all-staff, one in ten also on managers, one in seven on headteachers, so
a person is on up to three lists), its peak resident memory read from the
kernel when it ends (``wait4``'s ``ru_maxrss``). The send writes every message
to the outbox (about 4.5 GB at 100,000 people), which is deleted after each run.

Also shown: the peak of a process that only imports the command and all its
commands' modules, for the share that is the program itself; and the memory
per person between the smallest and the largest size.
Target (issue 16): under 150 MB at 100,000 people, growing no faster than
linearly with a small slope.

``--tree DIR`` measures the package of another checkout (an older commit
unpacked with ``git archive``, say) in the same run, for before-and-after
figures; runs alternate between the trees. Run by hand from the repository:

    .venv/bin/python benchmarks/bench_memory.py [--sizes 1000,10000,100000] [--tree DIR ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

import trees  # noqa: E402
from bench_send import ISSUE, LISTS, make_workspace  # noqa: E402

MODES = {
    "send": ["--transport", "eml", "--yes"],
    "dry_run": ["--transport", "eml", "--dry-run"],
}


# The command as ``python -m sender`` runs it, reporting its own peak resident memory
# (VmHWM) as it exits: measured from outside (wait4's ru_maxrss), a child would count
# the benchmark's own memory, which it shares between fork and exec.
LAUNCH = """
import atexit, os, runpy, sys

def report():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(kib)

atexit.register(report)
if sys.argv[1:] == ["--imports-only"]:
    import sender.cli  # before issue 16, this imported every command's module
    for name in getattr(sender.cli, "COMMANDS", ()):  # since, one command at a time
        sender.cli.cli.get_command(None, name)
else:
    sys.argv[0] = "newsletter"
    runpy.run_module("sender", run_name="__main__", alter_sys=True)
"""


def peak(args: list[str], cwd: Path, tree: Path) -> tuple[float, float]:
    """Run the command with ``args``; its peak resident memory in MB and wall time in s."""
    with tempfile.NamedTemporaryFile(prefix="bench-peak-") as out:
        env = trees.environment(tree, BENCH_PEAK_FILE=out.name)
        env.pop("NEWSLETTER_TOKEN_SECRET", None)  # a rehearsal makes no private tokens
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCH, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL
        )
        took = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"newsletter {' '.join(args)} in {cwd} failed ({done.returncode})")
        return int(Path(out.name).read_text() or 0) / 1024, took


def tidy(ws: Path) -> None:
    shutil.rmtree(ws / "outbox", ignore_errors=True)
    shutil.rmtree(ws / "archive", ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ws / 'ledger.sqlite'}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="people, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians reported")
    parser.add_argument("--modes", default="send,dry_run", help="send, dry_run or both")
    args, checkouts = trees.parse(parser)
    sizes = [int(n) for n in args.sizes.split(",")]
    modes = args.modes.split(",")
    lists = [arg for name, _ in LISTS for arg in ("--list", name)]

    root = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        print(f"python={sys.version.split()[0]} cpus={os.cpu_count()} sizes={sizes}")
        results: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
        imports: dict[str, list[float]] = {str(t): [] for t in checkouts}
        # Each tree sends from its own templates and issues, which its code can render.
        workspaces = {
            (str(tree), n): make_workspace(root / f"{i}-{n}", n, tree)
            for i, tree in enumerate(checkouts)
            for n in sizes
        }
        for r in range(args.repeat):
            for n in sizes:
                for mode in modes:
                    order = checkouts if r % 2 == 0 else checkouts[::-1]
                    for tree in order:
                        ws = workspaces[(str(tree), n)]
                        tidy(ws)
                        mb, took = peak(["send", ISSUE, *lists, *MODES[mode]], ws, tree)
                        results.setdefault((str(tree), mode, n), []).append((mb, took))
                        print(
                            f"round={r + 1} tree={tree} mode={mode} people={n} "
                            f"peak_rss_mb={mb:.0f} wall_s={took:.1f}",
                            flush=True,
                        )
                        tidy(ws)
            for tree in checkouts:
                mb, _ = peak(["--imports-only"], root, tree)
                imports[str(tree)].append(mb)

        for tree in checkouts:
            print(f"--- {tree}")
            print(f"imports_only_peak_rss_mb={statistics.median(imports[str(tree)]):.0f}")
            for mode in modes:
                line = []
                mbs = {}
                for n in sizes:
                    got = results[(str(tree), mode, n)]
                    mbs[n] = statistics.median(mb for mb, _ in got)
                    line.append(f"{n}={mbs[n]:.0f}MB")
                slope = ""
                if len(sizes) > 1:
                    lo, hi = sizes[0], sizes[-1]
                    per = (mbs[hi] - mbs[lo]) * 1024 * 1024 / (hi - lo)
                    slope = f" bytes_per_person={per:.0f} (from {lo} to {hi})"
                target = " (target < 150 MB at 100000)" if 100_000 in sizes else ""
                print(f"{mode}: peak_rss {' '.join(line)}{slope}{target}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
