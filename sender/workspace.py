"""A newsletter folder: its config, the looks and lists it has, its issues."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .config import Config, find_workspace, load_config
from .issue import Issue, load_issue
from .lists import field_key, is_email_header, list_names
from .render import Renderer, template_names


@dataclass
class Workspace:
    config: Config
    _issues: dict[Path, Issue] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: Path | None = None) -> Workspace:
        root = folder.resolve() if folder else find_workspace()
        return cls(load_config(root))

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def templates(self) -> list[str]:
        return template_names(self.config.templates_dir)

    @cached_property
    def lists(self) -> list[str]:
        return list_names(self.config.recipients_dir)

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.config)

    def display(self, path: Path) -> str:
        """A path as the user would type it: relative to the workspace when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def load_issue(self, path: Path) -> Issue:
        return load_issue(
            path, templates=self.templates, lists=self.lists, display=self.display(path)
        )

    def list_sizes(self) -> dict[str, int]:
        """Data rows per list: cheap enough for every check, even of a 100k-row list.
        Whether each row is valid is `newsletter lists`' question."""
        sizes = {}
        for name in self.lists:
            text = (self.config.recipients_dir / f"{name}.csv").read_bytes()
            sizes[name] = max(0, sum(1 for ln in text.splitlines() if ln.strip()) - 1)
        return sizes

    def list_columns(self) -> dict[str, set[str]]:
        """The column names of each list, from its header row only (cheap)."""
        columns: dict[str, set[str]] = {}
        for name in self.lists:
            raw = (self.config.recipients_dir / f"{name}.csv").read_bytes()[:65536]
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")
            first = next((ln for ln in io.StringIO(text) if ln.strip()), "")
            delimiter = ";" if first.count(";") > first.count(",") else ","
            header = next(csv.reader([first], delimiter=delimiter), [])
            columns[name] = {
                "email" if is_email_header(h) else field_key(h) for h in header if h.strip()
            }
        return columns
