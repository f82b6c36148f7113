"""Write each audience set's HTML and text to a folder, placeholders shown
with their defaults: what a person with no data in the lists would see."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .issue import Issue
from .placeholders import fill, split
from .variant import Variant


@dataclass(frozen=True)
class Built:
    variant: Variant
    html_path: Path
    text_path: Path
    html_bytes: int


def write_variants(issue: Issue, variants: list[Variant], out_dir: Path) -> list[Built]:
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for v in variants:
        html = fill(split(v.html, "html"), None)
        text = fill(split(v.text, "text"), None)
        html_path = out_dir / f"{issue.slug}.{v.key}.html"
        text_path = out_dir / f"{issue.slug}.{v.key}.txt"
        data = html.encode("utf-8")
        write_if_changed(html_path, data)
        write_if_changed(text_path, text.encode("utf-8"))
        for picture in v.pictures:
            target = out_dir / picture.src
            target.parent.mkdir(parents=True, exist_ok=True)
            write_if_changed(target, picture.data)
        built.append(Built(v, html_path, text_path, len(data)))
    return built


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` whole (temporary file, then rename); True if the file changed.

    Leaves timestamps alone when nothing changed, so a live preview, a file
    watcher or a publishing step does not see phantom edits.
    """
    if path.exists() and path.read_bytes() == data:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True
