"""What a spam filter makes of every shipped email: Debian's SpamAssassin, offline rules.

Each shipped issue is sent to every list through the outbox, and one message of each
version (each List-Id: a list, or a combination of lists people are on) is scored by
``spamassassin -L -t`` (local tests only: no DNS blocklists, no network). Every version
must score 0 or less; HTML_FONT_LOW_CONTRAST (a hidden preheader coloured like its
background) must not fire. The scores are printed for the record (pytest -s).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, Cli, need

pytestmark = pytest.mark.slow

ISSUES = sorted(p.name for p in (REPO / "newsletters").glob("*.yaml"))
_SCORE = re.compile(r"Content analysis details:\s+\((-?[\d.]+) points")
_RULE = re.compile(r"^\s*(-?[\d.]+)\s+([A-Z0-9_]+)\s", re.M)


def score(spamassassin: str, message: Path, home: Path) -> tuple[float, dict[str, float]]:
    """SpamAssassin's score of one message, and the rules that scored it."""
    done = subprocess.run(
        [spamassassin, "-L", "-t"],
        input=message.read_bytes(),
        capture_output=True,
        env={**os.environ, "HOME": str(home)},  # its user_prefs go here, not in ~
        timeout=120,
        check=True,
    )
    report = done.stdout.decode("utf-8", "replace").split("Content analysis details:", 1)
    assert len(report) == 2, done.stderr.decode()
    found = _SCORE.search("Content analysis details:" + report[1])
    assert found is not None, report[1]
    rules = {name: float(points) for points, name in _RULE.findall(report[1])}
    return float(found[1]), rules


def one_per_version(folder: Path) -> dict[str, Path]:
    """A message of each version in an outbox folder, by its List-Id."""
    versions: dict[str, Path] = {}
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        versions.setdefault(str(msg["List-Id"]), path)
    return versions


@pytest.mark.parametrize("issue", ISSUES)
def test_every_shipped_version_scores_zero_or_less(
    cli: Cli, workspace: Path, issue: str, tmp_path: Path
) -> None:
    spamassassin = need(
        "spamassassin", "sudo apt-get install spamassassin (or: bash scripts/setup-tests.sh)"
    )
    lists = ["--list", "headteachers", "--list", "managers", "--list", "all-staff"]
    result = cli("send", workspace / "newsletters" / issue, *lists, "--yes")
    assert result.exit_code == 0, result.output
    [folder] = (workspace / "outbox").iterdir()
    versions = one_per_version(folder)
    assert len(versions) >= 3, versions  # each list, and people on several
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = pool.map(lambda path: score(spamassassin, path, tmp_path), versions.values())
        scored = dict(zip(versions, found, strict=True))
    for version, (points, rules) in scored.items():
        print(f"{issue} {version}: {points} {rules}")
    too_high = {v: s for v, s in scored.items() if s[0] > 0}
    assert too_high == {}
    assert not any("HTML_FONT_LOW_CONTRAST" in rules for _, rules in scored.values())
