"""A new newsletter folder (``newsletter init``), from what ships inside the package.

The settings come with a line on each (written from their declarations, see
settings_doc.py), the two looks are copied into templates/ to change as wanted
(their shared base stays in the package, so it improves with each release), and
an example issue, two example lists and a .gitignore make a folder that checks
clean and sends to the outbox at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .config import CONFIG_NAME
from .render import SHIPPED_TEMPLATES, template_names
from .settings_doc import starter_toml

STARTER = Path(__file__).parent / "starter"

# What the starter newsletter.toml sets; every other setting of these sections is there,
# commented out, with an example.
VALUES = {
    ("newsletter", "name"): "Staff News",
    ("newsletter", "organisation"): "Our organisation",
    ("newsletter", "from"): "Staff News <news@example.org>",
    ("newsletter", "domain"): "example.org",
    ("newsletter", "lang"): "en-GB",
    ("send", "transport"): "eml",
    ("send", "outbox"): "outbox",
    ("send", "ledger"): "ledger.sqlite",
    ("images", "mode"): "embed",
}
SECTIONS = ("newsletter", "send", "images", "unsubscribe", "smtp")


@dataclass(frozen=True)
class Folder:
    root: Path
    written: list[Path]
    issue: Path  # the example issue


class FolderExists(Exception):
    """``newsletter init`` never writes over a file: these are in the way."""

    def __init__(self, root: Path, found: list[Path]) -> None:
        self.root = root
        self.found = found
        super().__init__(", ".join(str(p) for p in found))


def files(today: dt.date) -> dict[str, bytes]:
    """What a new folder holds, by path relative to it."""
    issue = f"{today.isoformat()}-first-issue.yaml"
    example = (STARTER / "first-issue.yaml").read_text(encoding="utf-8")
    example = example.replace("@DATE@", today.isoformat()).replace("@FILE@", issue)
    out = {
        CONFIG_NAME: starter_toml(VALUES, SECTIONS).encode("utf-8"),
        f"newsletters/{issue}": example.encode("utf-8"),
        "recipients/staff.csv": (STARTER / "staff.csv").read_bytes(),
        "recipients/headteachers.csv": (STARTER / "headteachers.csv").read_bytes(),
        ".gitignore": (STARTER / "gitignore").read_bytes(),
    }
    for look in template_names(SHIPPED_TEMPLATES):
        for ending in (".mjml.j2", ".txt.j2"):
            out[f"templates/{look}{ending}"] = (SHIPPED_TEMPLATES / (look + ending)).read_bytes()
    return out


def make_folder(root: Path, today: dt.date | None = None) -> Folder:
    """Write a new newsletter folder at ``root`` (made if missing); nothing is written
    when any of its files is there already (FolderExists names them)."""
    wanted = files(today or dt.date.today())
    found = [root / name for name in wanted if (root / name).exists()]
    if found:
        raise FolderExists(root, found)
    written = []
    for name, data in wanted.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    issue = next(p for p in written if p.parent.name == "newsletters")
    return Folder(root, written, issue)
