"""The ``--tree`` option some benchmarks share: measure another checkout beside this one.

An older commit unpacked with ``git archive`` (say) is run with its own ``sender``
package, found first on ``PYTHONPATH``, in the same run as this repository's: the
before-and-after figures then share the machine's load.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[Path]]:
    """The arguments, with ``--tree``, and the checkouts to measure (this one by default)."""
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        help="a checkout whose sender/ to measure (default: this repository); repeatable",
    )
    args = parser.parse_args()
    return args, [tree.resolve() for tree in (args.tree or [REPO])]


def environment(tree: Path, **more: str) -> dict[str, str]:
    """This process's environment, with ``tree``'s package first on the path."""
    return {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1", **more}
