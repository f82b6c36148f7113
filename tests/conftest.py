"""Shared fixtures. Real files, real servers, real Chromium: no mocks.

A tool the tests need and cannot find is a failure under CI=true (with what
to install), and a skip only on a developer's machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(tool: str, install: str) -> str:
    """The path of ``tool``; fail in CI, skip elsewhere, saying how to install it."""
    path = shutil.which(tool)
    if path:
        return path
    message = f"'{tool}' is not installed; run: {install}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return need("chromium", "sudo apt-get install chromium (or: bash scripts/setup-tests.sh)")


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    """One headless Debian chromium for the whole run, driven by playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Date headers from SOURCE_DATE_EPOCH (13 Feb 2025), so output is reproducible."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1739404800")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the shipped workspace (config, templates, issues, lists) to change freely."""
    for name in ("templates", "newsletters", "recipients"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "newsletter.toml", tmp_path / "newsletter.toml")
    return tmp_path


@pytest.fixture
def repo() -> Path:
    return REPO
