"""Shared fixtures. Real files, real servers, real Chromium: no mocks.

A tool the tests need and cannot find is a failure under CI=true (with what
to install), and a skip only on a developer's machine.
"""

from __future__ import annotations

import email.message
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pg
import pytest
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parent.parent
TOKEN_SECRET = "tests-only-secret-0123456789abcdef"
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


@pytest.fixture(autouse=True)
def token_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The shipped settings give each person private unsubscribe and bounce links, made
    with a secret from the environment: every test's sends (and their subprocesses) have one."""
    monkeypatch.setenv("NEWSLETTER_TOKEN_SECRET", TOKEN_SECRET)
    return TOKEN_SECRET


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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """One throwaway PostgreSQL server for the whole run, started when a test first needs
    it, stopped by its own handle at the end."""
    try:
        pg.server_bin()
    except pg.Missing as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with pg.cluster() as running:
        yield running


@pytest.fixture
def pg_url(pg_cluster: pg.Cluster) -> str:
    """A fresh, empty database of the test session's server."""
    return pg_cluster.url(pg_cluster.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> pg.Store:
    """The ledger of a test, once in an SQLite file and once in PostgreSQL: the same
    test runs against both ledgers."""
    path = tmp_path / "ledger.sqlite"
    if request.param == "sqlite":
        return pg.Store("sqlite", path)
    return pg.Store("postgresql", path, request.getfixturevalue("pg_url"))


@pytest.fixture
def ledger_url(store: pg.Store, workspace: Path) -> str:
    """The workspace's [send] ledger set to this test's ledger, of either kind."""
    config = workspace / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    line = '\nledger = "ledger.sqlite"\n'
    assert line in text, "the shipped newsletter.toml names its ledger in [send]"
    config.write_text(text.replace(line, f'\nledger = "{store.setting}"\n', 1), encoding="utf-8")
    return store.setting


@pytest.fixture
def repo() -> Path:
    return REPO


class Cli:
    """The ``newsletter`` command, run in-process by click's CliRunner in a workspace.

    ``cli("check", path)`` runs ``newsletter -w WORKSPACE check PATH``; arguments may be
    paths. ``cli.at(folder)`` is the same command in another workspace, ``cli.at(None)``
    with no ``-w``: it then looks for newsletter.toml from the current folder up.
    """

    def __init__(
        self, workspace: Path | Callable[[], Path] | None, *, catch_exceptions: bool = True
    ) -> None:
        self._workspace = workspace
        self.catch_exceptions = catch_exceptions

    def _folder(self) -> Path | None:
        if callable(self._workspace):
            self._workspace = self._workspace()
        return self._workspace

    @property
    def workspace(self) -> Path:
        """The folder passed as ``-w``."""
        folder = self._folder()
        if folder is None:
            raise AttributeError("this cli runs without -w, so it has no workspace")
        return folder

    def at(self, workspace: Path | None) -> Cli:
        return Cli(workspace, catch_exceptions=self.catch_exceptions)

    def __call__(self, *args: object) -> Result:
        from sender.cli import cli  # here: every test module loads conftest, few run the CLI

        argv = [str(arg) for arg in args]
        folder = self._folder()
        if folder is not None:
            argv = ["-w", str(folder), *argv]
        return CliRunner().invoke(cli, argv, catch_exceptions=self.catch_exceptions)


@pytest.fixture
def cli(request: pytest.FixtureRequest) -> Cli:
    """The command in this test's ``workspace``, copied only when first run, so a test
    that only uses ``cli.at(...)`` has no newsletter.toml in its tmp_path.

    As in CliRunner, an exception out of a command is caught and becomes exit code 1;
    ``@pytest.mark.cli(catch_exceptions=False)`` on a test, or in a module's pytestmark,
    lets it fail the test with its traceback instead.
    """
    marker = request.node.get_closest_marker("cli")
    catch = marker.kwargs.get("catch_exceptions", True) if marker else True
    return Cli(lambda: request.getfixturevalue("workspace"), catch_exceptions=catch)


def body(msg: email.message.EmailMessage, kind: str) -> str:
    """The text of a message's ``plain`` or ``html`` part (there must be one)."""
    part = msg.get_body((kind,))
    assert part is not None, f"no text/{kind} part"
    return str(part.get_content())
