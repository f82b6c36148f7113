"""newsletter serve: the archive and the unsubscribe pages, over real HTTP on 127.0.0.1.

The app runs in the uvicorn server ``newsletter serve`` runs, in a thread of
the test, on a socket the test binds to 127.0.0.1 and closes; requests go
through http.client, so every path is sent as written. Tokens are made with
``sender.tokens.make`` and saved in the ledger of the test's workspace, as a
send saves them. The pages are then looked at in Debian's chromium: axe-core
(the copy the ``axe-playwright-python`` package ships) finds no violation,
nothing scrolls sideways at 375 px, and the button works with scripts off.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI

from sender import tokens, web
from sender.cli import serve
from sender.config import Config
from sender.ledger import Suppression, TokenRecord, open_ledger, read_ledger
from sender.recipient import address_key
from sender.workspace import Workspace

SECRET = b"the secret of these tests only"
ISSUE = "2025-02-13-steve-kay-blog"
ONE_CLICK = b"List-Unsubscribe=One-Click"
URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Answer:
    status: int
    headers: Message
    text: str


@dataclass
class Site:
    """The app of a workspace, served on 127.0.0.1."""

    config: Config
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def person(self, email: str, lists: str, issue: str = ISSUE) -> str:
        """A person's token for ``lists`` of ``issue``, saved in the ledger as a send saves it."""
        key = address_key(email)
        token = tokens.make(SECRET, key, lists, issue)
        with open_ledger(self.config) as ledger:
            ledger.save_tokens([TokenRecord(token, key, lists, issue)])
        return token

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read().decode("utf-8"))
        finally:
            connection.close()

    def one_click(self, token: str) -> Answer:
        """What a mail provider sends (RFC 8058): no Origin, no cookie, this body."""
        return self.request("POST", f"/u/{token}", ONE_CLICK, URLENCODED)

    def suppressions(self) -> list[Suppression]:
        with read_ledger(self.config) as ledger:
            return ledger.suppressions()


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """``app`` in the server ``newsletter serve`` runs, on a free port of 127.0.0.1."""
    listening = socket.create_server(("127.0.0.1", 0))
    server = serve.server(app)
    exits: list[object] = []

    def run() -> None:
        try:
            server.run(sockets=[listening])
        except SystemExit as exc:  # uvicorn's way of saying the app would not start
            exits.append(exc.code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start (exit {exits})")
            time.sleep(0.01)
        yield listening.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        listening.close()
    assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def site(workspace: Path, ledger_url: str) -> Iterator[Site]:
    """The app, once with the SQLite ledger and once with PostgreSQL (``ledger_url``)."""
    assert ledger_url
    with serving(web.create_app(workspace)) as port:
        yield Site(Workspace.open(workspace).config, port)


def unsubscribed(email: str, lists: str, detail: str) -> Suppression:
    return Suppression(address_key(email), lists, "unsubscribed", "", detail, ISSUE, "web", "")


def without_time(entries: list[Suppression]) -> list[Suppression]:
    assert all(e.at for e in entries)
    return [replace(e, at="") for e in entries]


# -- the page and the one-click POST ----------------------------------------------------


def test_get_shows_the_lists_and_one_button_and_changes_nothing(site: Site) -> None:
    token = site.person("Priya.Shah@example.org", "headteachers")
    page = site.request("GET", f"/u/{token}")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<html lang="en">' in page.text
    assert page.text.count("<h1>") == 1
    assert page.text.count("<button") == 1 and 'type="submit"' in page.text
    assert "<li>headteachers</li>" in page.text
    assert "priya" not in page.text.lower() and "example.org" not in page.text
    assert "<script" not in page.text
    assert page.headers["Referrer-Policy"] == "same-origin"  # the token stays on this site
    assert page.headers["Cache-Control"] == "no-store"
    assert site.suppressions() == []  # link checkers fetch every link: a GET changes nothing


def test_one_click_post_unsubscribes_at_once(site: Site) -> None:
    token = site.person("priya.shah@example.org", "headteachers")
    answer = site.one_click(token)
    assert answer.status == 200
    assert without_time(site.suppressions()) == [
        unsubscribed("priya.shah@example.org", "headteachers", "one-click (RFC 8058)")
    ]


def test_one_click_post_as_multipart(site: Site) -> None:
    token = site.person("tom.baker@example.org", "managers")
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        b"One-Click\r\n"
        b"--XyZ--\r\n"
    )
    answer = site.request(
        "POST", f"/u/{token}", body, {"Content-Type": "multipart/form-data; boundary=XyZ"}
    )
    assert answer.status == 200
    assert [(s.email, s.lists) for s in site.suppressions()] == [
        ("tom.baker@example.org", "managers")
    ]


def test_replayed_post_is_fine_and_changes_nothing(site: Site) -> None:
    token = site.person("priya.shah@example.org", "headteachers")
    assert site.one_click(token).status == 200
    first = site.suppressions()
    assert len(first) == 1
    for _ in range(3):
        assert site.one_click(token).status == 200
    assert site.suppressions() == first  # the same one entry, its time unchanged
    page = site.request("GET", f"/u/{token}")
    assert page.status == 200
    assert "You are unsubscribed" in page.text and "<button" not in page.text


def test_a_person_on_two_lists_leaves_both(site: Site) -> None:
    token = site.person("sam.jones@example.org", "headteachers+managers")
    page = site.request("GET", f"/u/{token}")
    assert "<li>headteachers</li><li>managers</li>" in page.text
    assert site.one_click(token).status == 200
    (entry,) = site.suppressions()
    assert entry.lists == "headteachers+managers"
    assert entry.covers("headteachers") and entry.covers("managers")
    assert not entry.covers("all-staff")


def test_forged_tokens_get_404_nothing_recorded_and_logged_without_them(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    real = site.person("priya.shah@example.org", "headteachers")
    other_secret = tokens.make(b"somebody else's secret", "priya.shah@example.org", "x", ISSUE)
    changed = real[:-1] + ("a" if real[-1] != "a" else "b")
    forged = ["not-a-token", other_secret, changed, real + "a", "a" * 200]
    assert tokens.looks_like(other_secret) and tokens.looks_like(changed)
    for token in forged:
        for method, body in (("GET", b""), ("POST", ONE_CLICK)):
            answer = site.request(method, f"/u/{token}", body, URLENCODED)
            assert answer.status == 404, (method, token)
            assert "not recognised" in answer.text
            assert token not in answer.text
    assert site.suppressions() == []
    said = [r.getMessage() for r in caplog.records]
    warned = [m for m in said if "not recognised" in m]
    assert len(warned) == 2 * len(forged), said
    assert any("not in the ledger" in m for m in warned)
    assert any("not a token" in m for m in warned)
    assert any("/u/… 404" in m for m in said)  # each request is logged, its token hidden
    for token in [*forged, real]:
        assert not [m for m in said if token in m], token


def test_the_page_form_is_taken_only_from_the_page(site: Site) -> None:
    token = site.person("priya.shah@example.org", "headteachers")
    form = b"confirm=yes"
    refused = [
        {"Origin": "https://elsewhere.example"},
        {},  # neither Origin nor Referer
        {"Origin": "null"},
        {"Referer": "https://elsewhere.example/page"},
        {"Origin": site.url, "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in refused:
        answer = site.request("POST", f"/u/{token}", form, {**URLENCODED, **headers})
        assert answer.status == 403, headers
    assert site.suppressions() == []
    assert site.request("POST", f"/u/{token}", b"", URLENCODED).status == 400
    own = {"Origin": site.url, "Sec-Fetch-Site": "same-origin"}
    answer = site.request("POST", f"/u/{token}", form, {**URLENCODED, **own})
    assert answer.status == 200
    assert "You are unsubscribed" in answer.text and "<li>headteachers</li>" in answer.text
    assert without_time(site.suppressions()) == [
        unsubscribed("priya.shah@example.org", "headteachers", "confirmed on the page")
    ]
    other = site.person("tom.baker@example.org", "managers")  # a browser sending Referer only
    referer = {"Referer": f"{site.url}/u/{other}"}
    assert site.request("POST", f"/u/{other}", form, {**URLENCODED, **referer}).status == 200


def test_web_url_is_the_sites_own_address_behind_a_proxy(workspace: Path) -> None:
    """A proxy that rewrites Host still passes the page's form from https://web_url."""
    with serving(web.create_app(workspace)) as port:
        site = Site(Workspace.open(workspace).config, port)
        token = site.person("priya.shah@example.org", "headteachers")
        origin = {"Origin": "https://news.riverside.example.org"}  # the shipped web_url
        answer = site.request("POST", f"/u/{token}", b"confirm=yes", {**URLENCODED, **origin})
        assert answer.status == 200


def test_a_long_post_is_refused_unread(site: Site) -> None:
    token = site.person("priya.shah@example.org", "headteachers")
    answer = site.request("POST", f"/u/{token}", ONE_CLICK + b"&x=" + b"y" * 20_000, URLENCODED)
    assert answer.status == 413
    assert site.suppressions() == []


def test_lists_people_cannot_leave_are_never_left(workspace: Path) -> None:
    with (workspace / "newsletter.toml").open("a", encoding="utf-8") as toml:
        toml.write("\n[lists.all-staff]\nunsubscribe = false\n")
    with serving(web.create_app(workspace)) as port:
        site = Site(Workspace.open(workspace).config, port)
        # Only on all-staff: the send gives such a person a token (for bounces) with no lists.
        staff_only = site.person("sam.jones@example.org", "")
        page = site.request("GET", f"/u/{staff_only}")
        assert page.status == 200
        assert "nothing to unsubscribe" in page.text and "<button" not in page.text
        assert site.one_click(staff_only).status == 403
        assert site.suppressions() == []
        # A list made one people cannot leave after the send: the rest are still left.
        token = site.person("priya.shah@example.org", "all-staff+headteachers")
        page = site.request("GET", f"/u/{token}")
        assert "<li>headteachers</li>" in page.text and "all-staff" not in page.text
        assert site.one_click(token).status == 200
        assert [(s.email, s.lists) for s in site.suppressions()] == [
            ("priya.shah@example.org", "headteachers")
        ]


def test_a_damaged_ledger_is_said_plainly(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged SQLite file (this tests the file: not run with PostgreSQL)."""
    with serving(web.create_app(workspace)) as port:
        site = Site(Workspace.open(workspace).config, port)
        token = site.person("priya.shah@example.org", "headteachers")
        ledger = site.config.resolve(Path(str(site.config.ledger)))
        ledger.write_bytes(b"this is not a ledger" * 100)
        for answer in (site.request("GET", f"/u/{token}"), site.one_click(token)):
            assert answer.status == 503
            assert "Nothing was changed" in answer.text
    said = [r.getMessage() for r in caplog.records]
    assert any("ledger" in m and "cannot be read" in m for m in said), said
    assert not [m for m in said if token in m]


# -- the archive -------------------------------------------------------------------------


def test_the_archive_is_served_and_nothing_outside_it(site: Site) -> None:
    assert site.request("GET", "/").status == 404  # nothing published yet
    archive = site.config.resolve(site.config.archive)
    (archive / "2025" / "steve-kay-blog").mkdir(parents=True)
    (archive / "index.html").write_text("<h1>All issues</h1>", encoding="utf-8")
    (archive / "2025" / "steve-kay-blog" / "headteachers.html").write_text("<p>Blog</p>")
    home = site.request("GET", "/")
    assert home.status == 200 and "All issues" in home.text
    assert home.headers["X-Content-Type-Options"] == "nosniff"
    assert site.request("GET", "/2025/steve-kay-blog/headteachers.html").text == "<p>Blog</p>"
    assert site.request("GET", "/2025/").status == 404  # a folder is never listed
    assert site.request("GET", "/2025").status == 404
    for outside in (
        "/newsletter.toml",
        "/ledger.sqlite",
        "/../ledger.sqlite",
        "/%2e%2e/ledger.sqlite",
        "/2025/%2e%2e/%2e%2e/newsletter.toml",
        "/recipients/headteachers.csv",
    ):
        answer = site.request("GET", outside)
        assert answer.status in (400, 404), outside
        assert "[newsletter]" not in answer.text
    assert site.request("POST", "/index.html", b"x").status == 405


# -- sender.web:app, newsletter serve ------------------------------------------------------


def test_app_from_the_environment(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(web.ENVIRONMENT, str(workspace))
    with serving(web.FromEnvironment()) as port:
        site = Site(Workspace.open(workspace).config, port)
        token = site.person("priya.shah@example.org", "headteachers")
        assert site.request("GET", f"/u/{token}").status == 200
        assert site.one_click(token).status == 200
        assert len(site.suppressions()) == 1


def test_app_from_the_environment_without_a_newsletter_folder_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(web.ENVIRONMENT, str(tmp_path))
    with pytest.raises(AssertionError, match="did not start"), serving(web.FromEnvironment()):
        pass
    assert any(
        web.ENVIRONMENT in r.getMessage() and "newsletter.toml" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, seconds: float = 20) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + seconds
    os.set_blocking(proc.stdout.fileno(), False)
    while marker not in seen:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"no {marker!r} in {seen!r}")
        chunk = proc.stdout.read()
        seen += chunk or b""
        time.sleep(0.02)
    return seen


def test_newsletter_serve_runs_and_stops(workspace: Path, tmp_path: Path) -> None:
    config = Workspace.open(workspace).config
    token = tokens.make(SECRET, "priya.shah@example.org", "headteachers", ISSUE)
    with open_ledger(config) as ledger:
        ledger.save_tokens([TokenRecord(token, "priya.shah@example.org", "headteachers", ISSUE)])
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sender", "-w", str(workspace), "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "NO_COLOR": "1"},
        )
        try:
            said = _read_until(proc, b"Ctrl+C").decode()
            url = said.split(" at ", 1)[1].split()[0]
            assert url.startswith("http://127.0.0.1:")
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            site = Site(config, port)
            assert site.request("GET", f"/u/{token}").status == 200
            assert site.one_click(token).status == 200
            assert site.request("GET", f"/u/{'b' * 26}").status == 404
            proc.send_signal(signal.SIGINT)
            assert proc.wait(15) == 0
            assert b"Stopped." in _rest(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    log = errors.read_text()
    assert "GET /u/… 200" in log and "POST /u/… 200" in log and "not recognised" in log
    assert token not in log and "b" * 26 not in log
    assert "Traceback" not in log
    assert len(site.suppressions()) == 1


def _rest(proc: subprocess.Popen[bytes]) -> bytes:
    assert proc.stdout is not None
    return proc.stdout.read() or b""


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
def test_a_missing_library_says_how_to_install_it(workspace: Path, missing: str) -> None:
    program = (
        f"import sys; sys.modules[{missing!r}] = None; "  # as if it were not installed
        "from sender.cli import main; "
        f"sys.argv = ['newsletter', '-w', {str(workspace)!r}, 'serve']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'newsletter-sender[serve]'" in done.stderr
    assert "Traceback" not in done.stderr


# -- the pages in Chromium ---------------------------------------------------------------


def axe_source() -> str:
    """axe-core, as the axe-playwright-python package ships it (the test extra)."""
    from importlib import resources

    try:
        return (resources.files("axe_playwright_python") / "axe.min.js").read_text("utf-8")
    except ModuleNotFoundError:
        message = "axe-core is not installed; run: pip install -e '.[test]'"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


AXE_FIGURES: dict[str, dict[str, int]] = {}


def audit(page: Any, name: str) -> None:
    """axe-core on the page: no violations; and nothing wider than a 375 px phone."""
    page.evaluate(axe_source())
    results = page.evaluate("() => axe.run(document)")
    violations = [
        (v["id"], v["impact"], [n["html"] for n in v["nodes"]]) for v in results["violations"]
    ]
    assert violations == [], (name, violations)
    AXE_FIGURES[name] = {k: len(results[k]) for k in ("passes", "incomplete", "inapplicable")}
    assert AXE_FIGURES[name]["passes"] > 10
    wide = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide[0] <= wide[1], (name, wide)


@pytest.mark.browser
@pytest.mark.slow
def test_the_pages_in_chromium(site: Site, browser: Any) -> None:
    first = site.person("priya.shah@example.org", "headteachers+managers+all-staff")
    second = site.person("tom.baker@example.org", "managers")
    phone = {"viewport": {"width": 375, "height": 740}, "device_scale_factor": 2}
    outside: list[str] = []

    def only_here(route: Any) -> None:
        """Nothing leaves the machine: a request elsewhere is aborted (and fails below)."""
        if route.request.url.startswith(site.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = browser.new_context(**phone)
    context.route("**/*", only_here)
    try:
        page = context.new_page()
        response = page.goto(f"{site.url}/u/{first}")
        assert response is not None and response.status == 200
        assert page.get_by_role("heading", level=1).count() == 1
        audit(page, "confirmation page")
        page.screenshot(path=str(site.config.root / "unsubscribe-375.png"))
        with page.expect_navigation():
            page.get_by_role("button", name="Unsubscribe").click()
        assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
        audit(page, "unsubscribed page")
        page.goto(f"{site.url}/u/{first}")
        assert page.get_by_role("button").count() == 0
        audit(page, "already unsubscribed page")
        response = page.goto(f"{site.url}/u/{'c' * 26}")
        assert response is not None and response.status == 404
        audit(page, "not recognised page (404)")
    finally:
        context.close()
    # Scripts off, as in some mail apps' browsers: the one button still does it all.
    context = browser.new_context(java_script_enabled=False, **phone)
    context.route("**/*", only_here)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/u/{second}")
        with page.expect_navigation():
            page.get_by_role("button", name="Unsubscribe").click()
        assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    finally:
        context.close()
    assert outside == []
    # Each came through the browser's own form POST: its Origin passed the check.
    assert [(s.email, s.lists, s.detail) for s in site.suppressions()] == [
        ("priya.shah@example.org", "all-staff+headteachers+managers", "confirmed on the page"),
        ("tom.baker@example.org", "managers", "confirmed on the page"),
    ]
    print("axe-core", AXE_FIGURES)  # shown with -s, for the record
