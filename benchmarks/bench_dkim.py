"""What DKIM signing costs a whole send: ``send()`` with [dkim] off, Ed25519 and RSA-2048.

The Speed section of issue 14. The same workspace and plan as
``bench_send.py`` (its helpers are imported: the repository's issue, generated
lists of N people, a fresh Postfix ``smtp-sink`` on 127.0.0.1 per
measurement, whose counter says how many arrived), sent as ``newsletter
send`` sends, ledger on:

* ``off``: no [dkim] section: the baseline, measured in the same run.
* ``ed25519``: ``[dkim] algorithm = "ed25519-sha256"`` (dkimpy with pynacl).
* ``rsa``: ``[dkim] algorithm = "rsa-sha256"``, a 2048-bit key (dkimpy's own
  RSA in Python); fewer people (``--rsa-n``), as it is much slower.
* ``smtp_source``: Postfix's ``smtp-source``, the same count and mean size: the
  ceiling.

Also the signing alone, per message, on a real message of the issue.
Rounds interleave the measurements (each round in a rotated order); medians
are reported with their range. Target: Ed25519 costs under 15%.
Run by hand from the repository:

    .venv/bin/python benchmarks/bench_dkim.py [-n 3000] [--rsa-n 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

from bench_send import (  # noqa: E402  (the workspace, the sink, smtp-source)
    ISSUE,
    LISTS,
    Result,
    _tally,
    against_sink,
    lazy_jobs,
    loadavg,
    make_workspace,
    mean_size,
    set_port,
    smtp_source,
)
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa  # noqa: E402

from sender.dkim import signer_for  # noqa: E402
from sender.ledger import SqliteLedger  # noqa: E402
from sender.send import SendPlan, plan_send, send  # noqa: E402
from sender.send.target import target  # noqa: E402
from sender.transports.smtp import from_config  # noqa: E402
from sender.workspace import Workspace  # noqa: E402

ALGORITHMS = {"ed25519": "ed25519-sha256", "rsa": "rsa-sha256"}


def private_pem(kind: str) -> str:
    key = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def configure(ws_dir: Path, port: int, connections: int, kind: str) -> Workspace:
    """newsletter.toml pointed at the sink, with [dkim] for ``kind`` ('off': none)."""
    set_port(ws_dir, port, connections)
    if kind != "off":
        os.environ["NEWSLETTER_DKIM_KEY"] = KEYS[kind]
        with open(ws_dir / "newsletter.toml", "a", encoding="utf-8") as toml:
            toml.write(
                '\n[dkim]\ndomain = "riverside.example.org"\nselector = "bench"\n'
                f'algorithm = "{ALGORITHMS[kind]}"\n'
            )
    return Workspace.open(ws_dir)


KEYS = {kind: private_pem(kind) for kind in ALGORITHMS}


def whole_send(ws_dir: Path, plan: SendPlan, folder: Path, connections: int, kind: str) -> Result:
    n = len(plan.recipients)

    def run(port: int) -> tuple[str, str]:
        ws = configure(ws_dir, port, connections, kind)
        path = folder / f"ledger-{time.monotonic_ns()}.sqlite"
        ledger = SqliteLedger(path)
        try:
            report = send(
                plan,
                ws,
                from_config(ws.config.smtp),
                target(ws, plan, "smtp"),
                ledger=ledger,
                archive=False,
            )
        finally:
            ledger.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return _tally(report.outcomes, n), ""

    return against_sink(n, run)


def sign_alone(ws_dir: Path, plan: SendPlan, kind: str, count: int) -> float:
    """Milliseconds to sign one real message of the issue."""
    ws = configure(ws_dir, 25, 1, kind)
    signer = signer_for(ws.config)
    assert signer is not None
    messages = [job.data for _, job in zip(range(count), lazy_jobs(plan, ws), strict=False)]
    t0 = time.perf_counter()
    for data in messages:
        signer.sign(data)
    return (time.perf_counter() - t0) / len(messages) * 1000


def interleaved(runs: dict[str, Callable[[], Result]], repeat: int) -> dict[str, list[float]]:
    """Each measurement once a round, the order turned by one each round (a shared
    machine's load drifts); the rates by name."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    order = deque(runs)
    for round_number in range(1, repeat + 1):
        for name in order:
            result = runs[name]()
            rates[name].append(result.rate)
            trouble = f" WARNING: {result.warning}" if result.warning else ""
            print(f"round={round_number} {name}_msgs_per_s={result.rate:.0f}{trouble}", flush=True)
        order.rotate(-1)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="people (messages per send)")
    parser.add_argument("--rsa-n", type=int, default=500, help="people for the RSA sends")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians reported")
    args = parser.parse_args()
    os.environ.setdefault("NEWSLETTER_TOKEN_SECRET", "bench-dkim-0123456789abcdef")
    conns = args.connections
    root = Path(tempfile.mkdtemp(prefix="bench-dkim-"))
    try:
        ws_dir = make_workspace(root, args.n)
        ws = configure(ws_dir, 25, conns, "off")
        lists = [name for name, _ in LISTS]
        plan = plan_send(ws, ws_dir / ISSUE, lists)
        (root / "rsa").mkdir()
        rsa_dir = make_workspace(root / "rsa", args.rsa_n)
        rsa_plan = plan_send(configure(rsa_dir, 25, conns, "off"), rsa_dir / ISSUE, lists)
        n, size = len(plan.recipients), mean_size(plan, ws)
        print(
            f"n={n} rsa_n={len(rsa_plan.recipients)} mean_message_bytes={size} "
            f"connections={conns} repeat={args.repeat} cpus={os.cpu_count()}"
        )
        for kind in ALGORITHMS:
            print(f"sign_alone_{kind}_ms={sign_alone(ws_dir, plan, kind, 200):.2f}")
        print(f"loadavg_before={loadavg()}", flush=True)
        runs: dict[str, Callable[[], Result]] = {
            "smtp_source": lambda: smtp_source(n, size, conns),
            "off": lambda: whole_send(ws_dir, plan, root, conns, "off"),
            "ed25519": lambda: whole_send(ws_dir, plan, root, conns, "ed25519"),
            "rsa_off": lambda: whole_send(rsa_dir, rsa_plan, root, conns, "off"),
            "rsa": lambda: whole_send(rsa_dir, rsa_plan, root, conns, "rsa"),
        }
        results = interleaved(runs, args.repeat)
        med = {name: statistics.median(v) for name, v in results.items()}
        print("--- medians (range)")
        for name, rate in med.items():
            print(
                f"{name}_msgs_per_s={rate:.0f} ({min(results[name]):.0f}-{max(results[name]):.0f})"
            )
        print(f"ed25519_cost={(1 - med['ed25519'] / med['off']) * 100:.1f}% (target < 15%)")
        print(f"rsa2048_cost={(1 - med['rsa'] / med['rsa_off']) * 100:.1f}% (vs off, same n)")
        print(f"ratio_off_vs_smtp_source={med['off'] / med['smtp_source']:.2f}x")
        print(f"ratio_ed25519_vs_smtp_source={med['ed25519'] / med['smtp_source']:.2f}x")
        print(f"ratio_rsa_vs_smtp_source={med['rsa'] / med['smtp_source']:.2f}x")
        print(f"loadavg_after={loadavg()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
