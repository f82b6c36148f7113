"""Problems found in the user's files, and the one exception that carries them.

Every stage collects problems instead of stopping at the first, so the comms
officer sees the whole list once and can fix everything in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    col: int | None
    message: str
    hint: str | None = None
    severity: Severity = "error"

    @property
    def where(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def __str__(self) -> str:
        text = f"{self.where}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class ProblemsError(Exception):
    """Raised when input has errors; carries all of them."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def raise_errors(problems: Iterable[Problem]) -> None:
    """Raise ProblemsError with the errors among ``problems``, if there are any
    (warnings alone never stop anything)."""
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ProblemsError(errors)


class Severities:
    """``errors`` and ``warnings`` of anything holding problems."""

    def _problems(self) -> list[Problem]:
        raise NotImplementedError

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self._problems() if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self._problems() if p.severity == "warning"]


class Problems(Severities):
    """A collector: stages add to it, then ``raise_if_errors`` once at the end."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def error(
        self,
        file: str | Path,
        line: int | None,
        col: int | None,
        message: str,
        hint: str | None = None,
    ) -> None:
        self.items.append(Problem(str(file), line, col, message, hint, "error"))

    def warning(
        self,
        file: str | Path,
        line: int | None,
        col: int | None,
        message: str,
        hint: str | None = None,
    ) -> None:
        self.items.append(Problem(str(file), line, col, message, hint, "warning"))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def _problems(self) -> list[Problem]:
        return self.items

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ProblemsError(self.items)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest valid choice, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
