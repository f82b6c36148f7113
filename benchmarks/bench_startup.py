"""How long the ``newsletter`` command takes to start, against a bare click app.

Every figure is a whole process, started the way a user starts it, timed from
outside (``time.perf_counter`` around ``subprocess.run``), and given as the
median of ``--repeat`` runs with its range. The runs are interleaved (one of
each command per round, the order rotated), so load on a shared machine falls
on all of them alike. The commands:

* ``bare_help``: a click app of the same shape (a group with a ``--workspace``
  option and two subcommands), ``--help``: the baseline;
* ``help``: ``newsletter --help``;
* ``lists``: ``newsletter lists`` in a copy of the repository's workspace (its
  three small lists read, checked and shown);
* ``check``: ``newsletter check`` of the shipped blog issue.

Targets (issue 16): ``--help`` and ``lists`` under 2x the bare app, ``check``
under 3x. Then, for each command, what one run imports in all and which of
the heavy libraries it loads (``python -X importtime``, cumulative times).

``--tree DIR`` times the package found in another checkout (an older commit
unpacked with ``git archive``, say) in the same run, for before-and-after
figures; each tree is reported apart. Run by hand from the repository:

    .venv/bin/python benchmarks/bench_startup.py [--repeat 10] [--tree DIR ...]
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
REPO = HERE.parent
sys.path[:0] = [str(HERE)]

import trees  # noqa: E402

BLOG = "newsletters/2025-02-13-steve-kay-blog.yaml"

BARE_APP = '''
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path))
@click.version_option("0.1.0", prog_name="bare")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """A bare click app: a group and two commands, nothing else imported."""
    ctx.obj = workspace


@cli.command()
@click.argument("issue", type=click.Path(path_type=Path))
def check(issue: Path) -> None:
    """Check an issue."""
    click.echo(issue)


@cli.command()
def lists() -> None:
    """Show the lists."""
    click.echo("lists")


cli(prog_name="bare")
'''


def workspace_copy(root: Path) -> Path:
    """The repository's workspace files, in a folder of their own (no ledger, no outbox)."""
    ws = root / "workspace"
    ws.mkdir()
    for name in ("templates", "newsletters", "recipients"):
        shutil.copytree(REPO / name, ws / name)
    shutil.copy(REPO / "newsletter.toml", ws / "newsletter.toml")
    return ws


def commands(bare: Path) -> dict[str, list[str]]:
    newsletter = [sys.executable, "-m", "sender"]
    return {
        "bare_help": [sys.executable, str(bare), "--help"],
        "help": [*newsletter, "--help"],
        "lists": [*newsletter, "lists"],
        "check": [*newsletter, "check", BLOG],
    }


def env_for(tree: Path, cache: Path) -> dict[str, str]:
    """``tree``'s package first, with its compiled bytecode kept (in ``cache``) as an
    installed program's is: a shell with PYTHONDONTWRITEBYTECODE set would otherwise
    time compiling every module of ours from source on every run."""
    env = trees.environment(tree, COLUMNS="100", PYTHONPYCACHEPREFIX=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=120)
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):  # check exits 1 on warnings-as-errors only
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-500:]!r}")
    return took


# Heavy imports the issue named (and their like): which a command still loads.
HEAVY = (
    "rich.console",
    "rich.table",
    "email_validator",
    "markdown_it",
    "jinja2",
    "yaml",
    "mjml",
    "css_inline",
    "sqlite3",
    "mammoth",
    "sender.workspace",
    "sender.ledger",
    "sender.message",
)


def heavy_imports(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Which of HEAVY one run imports, with each one's cumulative import time."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took: dict[str, int] = {}
    total = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not name.startswith("  "):  # a top-level import: counts once in the total
            total += int(cumulative)
        took.setdefault(name.strip(), int(cumulative))
    shown = [f"{m}={took[m] / 1000:.0f}ms" for m in HEAVY if m in took]
    return f"all={total / 1000:.0f}ms " + (" ".join(shown) or "(none of them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each; medians")
    args, checkouts = trees.parse(parser)

    root = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        ws = workspace_copy(root)
        bare = root / "bare.py"
        bare.write_text(BARE_APP, encoding="utf-8")
        jobs = [
            (str(tree), name, argv, env_for(tree, root / "pycache"))
            for tree in checkouts
            for name, argv in commands(bare).items()
        ]
        print(f"python={sys.version.split()[0]} cpus={os.cpu_count()} repeat={args.repeat}")
        print(f"loadavg_before={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        times: dict[tuple[str, str], list[float]] = {(t, n): [] for t, n, _, _ in jobs}
        for _, _, argv, env in jobs:  # warm the file cache once, and write the bytecode
            run_once(argv, ws, env)
        for r in range(args.repeat):
            shift = r % len(jobs)
            for tree, name, argv, env in jobs[shift:] + jobs[:shift]:
                times[(tree, name)].append(run_once(argv, ws, env))
        print(f"loadavg_after={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for tree in checkouts:
            print(f"--- {tree}")
            med = {n: statistics.median(v) for (t, n), v in times.items() if t == str(tree)}
            base = med["bare_help"]
            for name, seconds in med.items():
                lo, hi = min(times[(str(tree), name)]), max(times[(str(tree), name)])
                target = {"help": 2, "lists": 2, "check": 3}.get(name)
                goal = f" (target < {target}x)" if target else ""
                print(
                    f"{name}_ms={seconds * 1000:.0f} (range {lo * 1000:.0f}-{hi * 1000:.0f}) "
                    f"ratio={seconds / base:.2f}x{goal}"
                )
            env = env_for(tree, root / "pycache")
            for name, argv in commands(bare).items():
                if name != "bare_help":
                    print(f"imports_{name}: {heavy_imports(argv, ws, env)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
