"""newsletter preview: the real message per person, live reload, and a server only we can use.

Real servers on 127.0.0.1 (port 0), real HTTP requests, and Debian's chromium
through playwright for what a comms officer does in the page. Every server a
test starts is stopped by its fixture. The browser may reach 127.0.0.1 only:
anything else (the email's remote images) is aborted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import email.policy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from conftest import Cli

from sender.lint import check_issue
from sender.lists import select
from sender.preview import MESSAGE_CSP, PreviewServer, workspace_version
from sender.send import plan_send
from sender.workspace import Workspace

BRIEFING = "2012-07-13-peter-duxbury-briefing.yaml"
COPY = "2012-07-13-briefing-copy.yaml"
HEADTEACHERS_ONLY = "Retiring Headteachers"
MANAGERS_ONLY = "Leadership, Leadership, Leadership!"
AOIFE = "aoife.byrne@hollybank-nursery.example.org"


pytestmark = pytest.mark.usefixtures("fixed_date")


@pytest.fixture
def issue(workspace: Path) -> Path:
    """A copy of the briefing, to change as the tests like."""
    path = workspace / "newsletters" / COPY
    shutil.copy(workspace / "newsletters" / BRIEFING, path)
    return path


@pytest.fixture
def server(workspace: Path, issue: Path) -> Iterator[PreviewServer]:
    preview = PreviewServer(workspace, issue, check=check_issue, port=0).start()
    try:
        yield preview
    finally:
        preview.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    server: PreviewServer,
    method: str,
    path: str,
    *,
    host: str | None = "default",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """A raw HTTP request, with whatever Host header we like (None: no Host at all)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host == "default":
            host = f"127.0.0.1:{server.port}"
        if host is not None:
            conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def post_test(
    server: PreviewServer,
    *,
    to: str = "me@example.org",
    token: str | None = "default",
    origin: str | None = "default",
    host: str | None = "default",
    extra: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Answer:
    fields = {"to": to, "audience": "headteachers", "recipient": AOIFE, **(form or {})}
    if token == "default":
        token = server.token
    if token is not None:
        fields["token"] = token
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if origin == "default":
        origin = f"http://127.0.0.1:{server.port}"
    if origin is not None:
        headers["Origin"] = origin
    headers.update(extra or {})
    return request(
        server, "POST", "/send-test", host=host, headers=headers, body=urlencode(fields).encode()
    )


def outbox_tests(workspace: Path, issue: Path) -> Path:
    return workspace / "outbox" / issue.stem / "tests"


# ---------------------------------------------------------------------------
# Only this machine, only this page


def test_listens_on_loopback_only_and_port_zero_picks_a_free_port(
    server: PreviewServer,
) -> None:
    assert server._httpd.server_address[0] == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"
    assert request(server, "GET", "/version").status == 200


@pytest.mark.parametrize("path", ["/", "/version", "/message", "/source", "/recipients"])
def test_refuses_a_host_that_is_not_the_address_it_serves(server: PreviewServer, path: str) -> None:
    # A page on evil.example whose DNS name was rebound to 127.0.0.1 sends its own Host.
    port = server.port
    for host in (
        f"evil.example:{port}",
        "evil.example",
        f"127.0.0.1.evil.example:{port}",
        f"127.0.0.1:{port + 1}",
        f"localhost:{port}.evil.example",
        "",
        None,
    ):
        answer = request(server, "GET", path, host=host)
        assert answer.status == 421, (host, answer.status)
        assert b"Aoife" not in answer.body and b"@" not in answer.body.split(b"(Host")[0]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert request(server, "GET", path, host=host).status == 200, host


def test_refuses_posts_from_other_origins_or_without_the_token(
    server: PreviewServer, workspace: Path, issue: Path
) -> None:
    port = server.port
    refused = {
        "foreign origin": post_test(server, origin="http://evil.example"),
        "foreign origin, same port": post_test(server, origin=f"http://evil.example:{port}"),
        "opaque origin": post_test(server, origin="null"),
        "https origin": post_test(server, origin=f"https://127.0.0.1:{port}"),
        "the other loopback name": post_test(server, origin=f"http://localhost:{port}"),
        "no origin, no referer": post_test(server, origin=None),
        "foreign referer": post_test(
            server, origin=None, extra={"Referer": "http://evil.example/page"}
        ),
        "cross-site fetch": post_test(server, extra={"Sec-Fetch-Site": "cross-site"}),
        "no token": post_test(server, token=None),
        "wrong token": post_test(server, token="x" * 43),
        "empty token": post_test(server, token=""),
    }
    for why, answer in refused.items():
        assert answer.status == 403, (why, answer.status, answer.text)
    rebound = post_test(server, host=f"evil.example:{port}", origin=f"http://evil.example:{port}")
    assert rebound.status == 421
    assert not outbox_tests(workspace, issue).exists()


def test_a_good_post_saves_the_test_and_explains_smtp(
    server: PreviewServer, workspace: Path, issue: Path
) -> None:
    answer = post_test(server, to="Me@Example.org")
    assert answer.status == 200, answer.text
    result = answer.json()
    assert result["ok"] is True
    assert result["transport"] == "eml"
    assert 'transport = "smtp"' in result["help"]
    assert "NEWSLETTER_SMTP_PASSWORD" in result["help"]
    files = list(outbox_tests(workspace, issue).glob("*.eml"))
    assert [f.name for f in files] == ["me@example.org.eml"]
    assert result["files"] == [str(files[0].relative_to(workspace))]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "Me@example.org"
    assert msg["Subject"].startswith("[TEST] ")
    html = msg.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    # The headteachers' version, personalised as Aoife.
    assert HEADTEACHERS_ONLY in html.get_content()
    assert "Dear Aoife," in html.get_content()
    # A Referer from the page itself is as good as an Origin.
    page = f"http://localhost:{server.port}/?audience=headteachers"
    again = post_test(server, origin=None, host=f"localhost:{server.port}", extra={"Referer": page})
    assert again.status == 200, again.text


def test_a_bad_address_is_refused_with_a_reason(server: PreviewServer) -> None:
    answer = post_test(server, to="not an address")
    assert answer.status == 400
    assert answer.json()["ok"] is False
    assert "not an email address" in answer.json()["message"]


def test_the_page_says_how_to_set_up_smtp_when_tests_are_files(server: PreviewServer) -> None:
    page = request(server, "GET", "/").text
    assert 'id="smtp-help"' in page
    assert "[smtp]" in page and "NEWSLETTER_SMTP_PASSWORD" in page
    assert server.token in page  # the form carries this run's token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Recorder:
    """An aiosmtpd handler keeping each message's envelope and bytes."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"


def test_an_smtp_workspace_sends_the_test_through_the_server(workspace: Path, issue: Path) -> None:
    from aiosmtpd.controller import Controller

    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        toml = workspace / "newsletter.toml"
        text = toml.read_text("utf-8").replace('transport = "eml"', 'transport = "smtp"')
        text = re.sub(r"^\[smtp\].*", "", text, flags=re.S | re.M)
        text += f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        toml.write_text(text, "utf-8")
        with PreviewServer(workspace, issue, check=check_issue, port=0) as preview:
            page = request(preview, "GET", "/").text
            answer = post_test(preview)
    finally:
        controller.stop()
    assert 'id="smtp-help"' not in page and f"127.0.0.1:{port}" in page
    assert answer.status == 200, answer.text
    assert answer.json()["ok"] is True, answer.json()
    assert answer.json()["transport"] == "smtp"
    assert answer.json()["help"] == ""
    assert [rcpt for _, rcpt, _ in recorder.messages] == [["me@example.org"]]
    msg = email.message_from_bytes(recorder.messages[0][2], policy=email.policy.default)
    assert str(msg["Subject"]).startswith("[TEST] ")
    assert not outbox_tests(workspace, issue).exists()


# ---------------------------------------------------------------------------
# What the page shows


def test_the_message_is_the_real_bytes_of_that_person(
    server: PreviewServer, workspace: Path, issue: Path
) -> None:
    ws = Workspace.open(workspace)
    plan = plan_send(ws, issue, ["headteachers"])
    aoife = next(r for r in plan.recipients if r.email == AOIFE)
    expected = plan.templates(ws)[frozenset({"headteachers"})].render(aoife)

    query = urlencode({"audience": "headteachers", "recipient": AOIFE})
    source = request(server, "GET", f"/source?{query}")
    assert source.status == 200
    assert source.body == expected

    message = request(server, "GET", f"/message?{query}")
    assert message.status == 200
    assert message.headers["content-type"] == "text/html; charset=utf-8"
    assert message.headers["content-security-policy"] == MESSAGE_CSP
    assert "default-src 'none'" in MESSAGE_CSP and "script-src" not in MESSAGE_CSP
    parsed = email.message_from_bytes(expected, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    html = parsed.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    assert message.text == html.get_content()

    page = request(server, "GET", f"/?{query}")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    frame = re.search(r"<iframe [^>]*>", page.text)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert "allow-scripts" not in frame.group(0) and "allow-same-origin" not in frame.group(0)
    assert "Dear Aoife," in page.text  # the plain-text tab


def test_audiences_are_each_list_and_each_combination_people_are_on(
    server: PreviewServer, workspace: Path
) -> None:
    ws = Workspace.open(workspace)
    everyone = select(ws.config.recipients_dir, ws.root, ws.lists)
    both = sum(1 for r in everyone.recipients if set(r.lists) == {"all-staff", "managers"})
    assert both > 0
    view = server.view()
    assert [(a.key, a.count) for a in view.audiences] == [
        ("all-staff", everyone.reports["all-staff"].valid),
        ("headteachers", everyone.reports["headteachers"].valid),
        ("managers", everyone.reports["managers"].valid),
        ("all-staff+managers", both),
    ]
    # Someone joins the managers list who is also a headteacher: a new combination.
    with (workspace / "recipients" / "managers.csv").open("a", encoding="utf-8") as f:
        f.write(f"{AOIFE},Aoife,Aoife Byrne,Early Years\n")
    keys = [a.key for a in server.view().audiences]
    assert keys[-2:] == ["all-staff+managers", "headteachers+managers"]
    found = request(server, "GET", "/recipients?audience=headteachers%2Bmanagers").json()
    assert found == {"total": 1, "people": [{"email": AOIFE, "name": "Aoife Byrne"}]}
    page = request(server, "GET", "/?audience=headteachers%2Bmanagers").text
    assert "Aoife Byrne &lt;aoife.byrne" in page  # To: the one person with both
    assert "headteachers + managers (1 on all of them)" in page


def test_recipients_are_found_by_name_or_address(server: PreviewServer) -> None:
    def search(q: str) -> list[str]:
        query = urlencode({"audience": "headteachers", "q": q})
        return [p["email"] for p in request(server, "GET", f"/recipients?{query}").json()["people"]]

    assert search("zoë") == ["head@oakfield-primary.example.com"]
    assert search("ZOË whitfield") == ["head@oakfield-primary.example.com"]
    assert search("hollybank") == [AOIFE]
    assert search("nobody-like-this") == []
    assert len(search("")) == 20


@pytest.mark.parametrize(
    "changed",
    [
        "newsletters/{issue}",
        "templates/blog.mjml.j2",
        "recipients/managers.csv",
        "newsletter.toml",
    ],
)
def test_the_version_changes_when_an_input_is_saved(
    workspace: Path, issue: Path, changed: str
) -> None:
    before = workspace_version(workspace, issue)
    assert workspace_version(workspace, issue) == before
    path = workspace / changed.format(issue=issue.name)
    path.write_bytes(path.read_bytes() + b"\n")
    assert workspace_version(workspace, issue) != before


def test_a_broken_issue_shows_the_check_message_and_the_server_keeps_running(
    server: PreviewServer, issue: Path
) -> None:
    good = issue.read_text("utf-8")
    issue.write_text(good.replace("title: ", "title: [unclosed ", 1), "utf-8")
    page = request(server, "GET", "/")
    assert page.status == 200
    assert 'id="errors"' in page.text
    assert f"newsletters/{COPY}:" in page.text
    assert "YAML" in page.text
    assert request(server, "GET", "/message").status == 404
    issue.write_text(good, "utf-8")
    page = request(server, "GET", "/")
    assert 'id="errors"' not in page.text
    assert "Peter Duxbury&#39;s July briefing" in page.text


def test_check_findings_are_listed_with_file_and_line(server: PreviewServer, issue: Path) -> None:
    text = issue.read_text("utf-8")
    issue.write_text(text.replace("  - heading: Adoption", "  - heading: Adoption\n    headng: x"))
    page = request(server, "GET", "/").text
    findings = re.search(r'<ul class="problems" id="findings">(.*?)</ul>', page, re.S)
    assert findings is not None
    assert re.search(rf"newsletters/{re.escape(COPY)}:\d+:\d+</code>", findings.group(1))
    assert "did you mean &#39;heading&#39;?" in findings.group(1)


# ---------------------------------------------------------------------------
# Clients that misbehave


def until_closed(sock: socket.socket, limit: float) -> tuple[float | None, bytes]:
    """Seconds until the server closes ``sock`` (None: not within ``limit``), and what it sent."""
    start = time.monotonic()
    answer = b""
    sock.settimeout(limit)
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None, answer
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return time.monotonic() - start, answer
        answer += chunk
        sock.settimeout(max(0.01, limit - (time.monotonic() - start)))


def raw(server: PreviewServer, data: bytes, limit: float = 5) -> bytes:
    """Send ``data`` as it is and return all the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=limit) as sock:
        sock.sendall(data)
        closed, answer = until_closed(sock, limit)
    assert closed is not None, f"no answer in {limit} s: {answer[:80]!r}"
    return answer


def good_form(server: PreviewServer) -> bytes:
    fields = {"token": server.token, "to": "me@example.org", "audience": "headteachers"}
    return urlencode(fields).encode()


def post_head(server: PreviewServer, *lengths: int) -> bytes:
    """The head of a POST of the test form from our own page, with these Content-Lengths."""
    ours = f"127.0.0.1:{server.port}"
    head = (
        f"POST /send-test HTTP/1.1\r\nHost: {ours}\r\nOrigin: http://{ours}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        + "".join(f"Content-Length: {n}\r\n" for n in lengths)
        + "\r\n"
    )
    return head.encode()


def test_two_host_headers_are_refused(server: PreviewServer, workspace: Path, issue: Path) -> None:
    # Which Host counts would be up to us, and to any proxy on the way: neither is asked.
    ours, evil = f"127.0.0.1:{server.port}", "evil.example"
    for first, second in ((ours, evil), (evil, ours), (ours, ours)):
        head = f"GET /recipients HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n\r\n"
        answer = raw(server, head.encode())
        assert answer.startswith(b"HTTP/1.0 400 "), (first, second, answer[:80])
        assert b"@" not in answer
    # Two lengths for one body: which one ends it is just as ambiguous.
    form = good_form(server)
    answer = raw(server, post_head(server, len(form), 5) + form)
    assert answer.startswith(b"HTTP/1.0 400 "), answer[:80]
    assert not outbox_tests(workspace, issue).exists()
    assert request(server, "GET", "/version").status == 200


def test_two_hundred_clients_at_once_are_all_answered(server: PreviewServer) -> None:
    # All connect before the server accepts any: the listen queue must hold them.
    head = f"GET /version HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()

    async def one() -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(head)
            answer = await reader.read()
        finally:
            writer.close()
        return answer.split(b" ", 2)[1].decode() if answer else "closed without an answer"

    async def at_once() -> list[str | BaseException]:
        clients = (asyncio.wait_for(one(), 10) for _ in range(200))
        return await asyncio.gather(*clients, return_exceptions=True)

    # Its own thread: in a whole run, playwright's loop may already run in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, at_once()).result()
    outcomes = Counter(
        answer if isinstance(answer, str) else type(answer).__name__ for answer in answers
    )
    assert outcomes == {"200": 200}, outcomes


TIMEOUT = 0.5


@pytest.fixture
def impatient(workspace: Path, issue: Path) -> Iterator[PreviewServer]:
    """A server that gives a request TIMEOUT seconds to arrive."""
    options: dict[str, Any] = {"check": check_issue, "port": 0, "request_timeout": TIMEOUT}
    with PreviewServer(workspace, issue, **options) as preview:
        yield preview


def test_a_client_that_sends_nothing_or_half_a_line_is_let_go(impatient: PreviewServer) -> None:
    for sent in (b"", b"GET /vers"):
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            opened = time.monotonic()
            sock.sendall(sent)
            # Meanwhile the page is served as usual.
            assert request(impatient, "GET", "/version").status == 200
            closed, answer = until_closed(sock, 4 * TIMEOUT)
            took = time.monotonic() - opened
        assert closed is not None, f"{sent!r}: still open after {took:.1f} s"
        assert TIMEOUT <= took <= 2 * TIMEOUT, (sent, took)
        assert answer == b""


def test_a_request_sent_a_byte_at_a_time_has_one_deadline(impatient: PreviewServer) -> None:
    # A timeout per read starts again with each byte; the whole request has TIMEOUT to arrive.
    line = f"GET /version HTTP/1.1\r\nHost: 127.0.0.1:{impatient.port}\r\nX-Slow: ".encode()
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        opened = time.monotonic()
        sock.settimeout(TIMEOUT / 5)
        for byte in line + b"." * 40:
            try:
                sock.send(bytes([byte]))
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue  # still open: the next byte
            except OSError:
                break  # reset: closed
        took = time.monotonic() - opened
    assert took <= 2 * TIMEOUT, f"a trickling client held the connection {took:.1f} s"


def test_a_form_shorter_than_its_content_length_is_refused(
    impatient: PreviewServer, workspace: Path, issue: Path
) -> None:
    form = good_form(impatient)
    head = post_head(impatient, len(form) + 40)
    # The rest never comes: the client waits, or says it has sent all it will.
    for done_sending in (False, True):
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            opened = time.monotonic()
            sock.sendall(head + form)
            if done_sending:
                sock.shutdown(socket.SHUT_WR)
            closed, answer = until_closed(sock, 4 * TIMEOUT)
            took = time.monotonic() - opened
        assert closed is not None, f"still open after {took:.1f} s"
        assert took <= 2 * TIMEOUT, (done_sending, took)
        assert answer.startswith(b"HTTP/1.0 400 "), (done_sending, answer[:80])
        assert b"shorter than its Content-Length" in answer
    assert not outbox_tests(workspace, issue).exists()
    assert request(impatient, "GET", "/version").status == 200


# ---------------------------------------------------------------------------
# The command


def test_the_command_serves_until_interrupted(workspace: Path, issue: Path) -> None:
    command = Path(sys.executable).with_name("newsletter")
    process = subprocess.Popen(
        [str(command), "-w", str(workspace), "preview", str(issue), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        assert match, first
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("GET", "/version")
        assert conn.getresponse().status == 200
        conn.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Preview stopped." in out
    assert "Traceback" not in err


def test_the_command_says_when_the_port_is_taken(
    cli: Cli, server: PreviewServer, issue: Path
) -> None:
    result = cli("preview", issue, "--port", server.port)
    assert result.exit_code == 1
    assert f"port {server.port} is already in use" in result.output
    missing = cli("preview", "nope.yaml")
    assert missing.exit_code == 1
    assert "no such file" in missing.output


def test_the_command_has_help_with_examples(cli: Cli) -> None:
    result = cli.at(None)("preview", "--help")
    assert result.exit_code == 0
    assert "--port" in result.output and "--open" in result.output
    assert "newsletter preview newsletters/" in result.output


# ---------------------------------------------------------------------------
# In the browser


def section(frame: Any, heading: str) -> Any:
    """A section of the email by its heading (its words are in "In this issue" too)."""
    return frame.get_by_role("heading", level=2, name=re.compile(re.escape(heading)))


# The email's ground in light and dark mode, and its text in dark (sender/templates/_base.mjml.j2).
LIGHT_GROUND, DARK_GROUND, DARK_TEXT = "rgb(238, 241, 244)", "rgb(11, 17, 23)", "rgb(230, 235, 240)"
FRAME_LOADS = 15_000  # ms: switching dark mode loads the message again, slower on a busy machine


@dataclass
class Browsing:
    page: Any
    shots: Path
    server: PreviewServer
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        return path

    def frame(self) -> Any:
        return self.page.frame_locator("#message")


@pytest.fixture
def browsing(browser: Any, server: PreviewServer, tmp_path: Path) -> Iterator[Browsing]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = context.new_page()
    seen = Browsing(page, shots, server)

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            seen.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    page.set_default_timeout(5000)
    try:
        yield seen
    finally:
        context.close()
    assert not seen.errors, seen.errors


@pytest.mark.browser
@pytest.mark.slow
def test_switching_audience_shows_and_hides_the_headteachers_section(
    browsing: Browsing,
) -> None:
    from playwright.sync_api import expect

    page = browsing.page
    page.goto(browsing.server.url)
    expect(page.locator("#audience")).to_have_value("all-staff")
    frame = browsing.frame()
    expect(frame.get_by_role("heading", name=re.compile(r"\bAdoption$"))).to_be_visible()
    expect(section(frame, HEADTEACHERS_ONLY)).to_have_count(0)

    page.select_option("#audience", "headteachers")
    expect(page).to_have_url(re.compile(r"audience=headteachers&recipient="))
    expect(section(frame, HEADTEACHERS_ONLY)).to_be_visible()
    expect(page.locator("#to-header")).to_contain_text("head@oakfield-primary.example.com")
    section(frame, HEADTEACHERS_ONLY).scroll_into_view_if_needed()
    browsing.shot("headteachers-desktop")

    page.select_option("#audience", "all-staff+managers")
    expect(section(frame, MANAGERS_ONLY)).to_be_visible()
    expect(section(frame, HEADTEACHERS_ONLY)).to_have_count(0)

    page.select_option("#audience", "all-staff")
    expect(page).to_have_url(re.compile(r"audience=all-staff&"))
    expect(frame.get_by_role("heading", name=re.compile(r"\bAdoption$"))).to_be_visible()
    expect(section(frame, HEADTEACHERS_ONLY)).to_have_count(0)
    expect(section(frame, MANAGERS_ONLY)).to_have_count(0)


@pytest.mark.browser
@pytest.mark.slow
def test_mobile_width_plain_text_and_dark_mode_survive_a_reload(
    browsing: Browsing,
) -> None:
    from playwright.sync_api import expect

    page = browsing.page
    page.goto(browsing.server.url + "?audience=headteachers")
    page.fill("#q", "hollybank")
    expect(page.locator("#people a")).to_have_count(1)
    page.click("#people a")
    expect(page).to_have_url(re.compile(r"recipient=aoife\.byrne"))

    page.click("#w-mobile")
    expect(page.locator("#w-mobile")).to_have_attribute("aria-pressed", "true")
    frame_element = page.locator("#message")
    expect(frame_element).to_have_js_property("clientWidth", 375)
    body = browsing.frame().locator("html")
    expect(browsing.frame().get_by_text("Dear Aoife,")).to_be_visible()
    widths = body.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
    )
    assert widths[1] == 375, widths
    assert max(widths[0], widths[2]) <= widths[1], f"horizontal scroll in the iframe: {widths}"
    browsing.shot("headteachers-mobile")

    # The page itself is light (the browser's own setting): the email is not dark yet.
    frame = browsing.frame()
    expect(frame.locator("body")).to_have_css("background-color", LIGHT_GROUND, timeout=FRAME_LOADS)
    page.check("#dark")
    expect(page.locator("body")).to_have_class(re.compile(r"\bdark\b"))
    # The email's own dark mode in the frame, not only a dark page around it.
    expect(frame.locator("body")).to_have_css("background-color", DARK_GROUND, timeout=FRAME_LOADS)
    expect(frame.get_by_text("Dear Aoife,")).to_have_css("color", DARK_TEXT)
    browsing.shot("headteachers-mobile-dark")

    page.click("#tab-text")
    expect(page.locator("#panel-text")).to_be_visible()
    expect(page.locator("#panel-html")).to_be_hidden()
    expect(page.locator("#text")).to_contain_text("Dear Aoife,")
    expect(page.locator("#text")).to_contain_text(HEADTEACHERS_ONLY)
    browsing.shot("plain-text")

    page.reload()
    expect(page.locator("#tab-text")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#text")).to_contain_text("Dear Aoife,")
    expect(page.locator("#dark")).to_be_checked()
    expect(page.locator("#w-mobile")).to_have_attribute("aria-pressed", "true")
    page.click("#tab-html")
    expect(page.locator("#message")).to_have_js_property("clientWidth", 375)
    expect(frame.locator("body")).to_have_css("background-color", DARK_GROUND, timeout=FRAME_LOADS)
    page.uncheck("#dark")
    expect(frame.locator("body")).to_have_css("background-color", LIGHT_GROUND, timeout=FRAME_LOADS)

    page.click("#tab-headers")
    expect(page.locator("#headers")).to_contain_text("List-Id")
    page.click("#tab-source")
    expect(page.locator("#source")).to_contain_text("Content-Transfer-Encoding: quoted-printable")
    page.click("#tab-check")
    expect(page.locator("#findings")).to_contain_text("No problems found")


@pytest.mark.browser
@pytest.mark.slow
def test_a_saved_change_appears_by_itself_and_a_broken_issue_shows_its_error(
    browsing: Browsing, issue: Path
) -> None:
    from playwright.sync_api import expect

    page = browsing.page
    query = urlencode({"audience": "headteachers", "recipient": AOIFE})
    page.goto(f"{browsing.server.url}?{query}#tab=text")
    expect(page.locator("#text")).to_contain_text(HEADTEACHERS_ONLY)
    loaded = page.evaluate("() => performance.timeOrigin")

    good = issue.read_text("utf-8")
    changed = good.replace(
        f"heading: {HEADTEACHERS_ONLY}", "heading: Retiring Headteachers and Deputies"
    )
    assert changed != good
    saved = time.monotonic()
    issue.write_text(changed, "utf-8")
    expect(page.locator("#text")).to_contain_text(
        "Retiring Headteachers and Deputies", timeout=3000
    )
    took = time.monotonic() - saved
    assert took < 2.0, f"the page took {took:.1f} s to show the change"
    # It reloaded itself (no page.reload() here), keeping person, list and tab.
    assert page.evaluate("() => performance.timeOrigin") != loaded
    assert "audience=headteachers" in page.url and "recipient=aoife.byrne" in page.url
    assert page.url.endswith("#tab=text")
    expect(page.locator("#tab-text")).to_have_attribute("aria-selected", "true")
    page.click("#tab-html")
    changed_heading = section(browsing.frame(), "Retiring Headteachers and Deputies")
    expect(changed_heading).to_be_visible()
    changed_heading.scroll_into_view_if_needed()
    browsing.shot("after-save")

    issue.write_text(changed.replace("title: ", "title: [unclosed ", 1), "utf-8")
    errors = page.locator("#errors")
    expect(errors).to_be_visible(timeout=3000)
    expect(errors).to_contain_text(f"newsletters/{COPY}:")
    expect(errors).to_contain_text("YAML")
    browsing.shot("broken-yaml")

    issue.write_text(good, "utf-8")
    expect(errors).to_have_count(0, timeout=3000)
    expect(section(browsing.frame(), HEADTEACHERS_ONLY)).to_be_visible()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")


@pytest.mark.browser
@pytest.mark.slow
def test_send_a_test_from_the_page(browsing: Browsing, workspace: Path, issue: Path) -> None:
    from playwright.sync_api import expect

    page = browsing.page
    page.goto(browsing.server.url + "?" + urlencode({"audience": "headteachers"}))
    page.fill("#to", "me@example.org")
    page.click("#send-test")
    result = page.locator("#test-result")
    expect(result).to_have_attribute("data-ok", "true")
    expect(result).to_contain_text("Saved a [TEST] of the headteachers version")
    assert (outbox_tests(workspace, issue) / "me@example.org.eml").is_file()
    browsing.shot("test-sent")
