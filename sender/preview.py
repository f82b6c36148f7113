"""Look at an issue as each person will get it: a local web server with live reload.

``PreviewServer`` serves one page for one issue file. The page shows the real
message of a chosen recipient (the bytes ``MessageTemplate.render`` makes for
them, decoded, not a re-render), switches audience and recipient, shows the
plain text, the headers, the raw source and the ``check`` findings, and
reloads itself when the issue, a template, a list or newsletter.toml changes.
It can send a test through the same path as ``newsletter send --test-to``.

People's names and addresses are on these pages, so the server:

* listens on 127.0.0.1 only, never on other interfaces;
* answers only requests whose Host is the address it serves (127.0.0.1:PORT
  or localhost:PORT): a web page on another site cannot reach it through a
  DNS name rebound to 127.0.0.1 (421 otherwise);
* takes a POST only from its own page: same Origin (or Referer) and the
  random token of this run (403 otherwise);
* shows the message in a sandboxed iframe, served with a Content-Security-
  Policy that runs no script and loads nothing but images.

This module never prints; ``sender.cli.preview`` does.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
from email_validator import EmailNotValidError, validate_email

from .audiences import audience_key
from .config import CONFIG_NAME
from .lists import select
from .message import MessageTemplate
from .problems import Problem, ProblemsError, Severities
from .recipient import Recipient, address_key
from .send import SendPlan, outbox_folder, plan_send
from .send import send_test as send_test_copy
from .transports import TransportError
from .workspace import Workspace

__all__ = [
    "HOST",
    "MESSAGE_CSP",
    "Audience",
    "CheckFn",
    "PreviewServer",
    "Shown",
    "TestResult",
    "workspace_version",
]

HOST = "127.0.0.1"
CheckFn = Callable[[Workspace, Path], list[Problem]]

# The message in the iframe: no script, no fetches, no fonts; images and its own styles.
MESSAGE_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
SEARCH_LIMIT = 20
MAX_BODY = 16 * 1024
_CACHED_MESSAGES = 64


# ---------------------------------------------------------------------------
# What changed: a version of the workspace's inputs


def _watched(root: Path, issue: Path) -> Iterable[Path]:
    yield root / CONFIG_NAME
    yield issue
    yield from sorted((root / "newsletters").glob("*.yaml"))
    templates = root / "templates"
    if templates.is_dir():
        yield from sorted(p for p in templates.rglob("*") if p.is_file())
    yield from sorted((root / "recipients").glob("*.csv"))


def workspace_version(root: Path, issue: Path) -> str:
    """A short hash of the name, size and mtime of every input the page depends on.

    Changes whenever the issue, a template, a list or newsletter.toml is saved
    (or appears, or goes).
    """
    digest = hashlib.sha256()
    for path in _watched(root, issue):
        try:
            st = path.stat()
            stamp = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n"
        except OSError:
            stamp = f"{path}\0missing\n"
        digest.update(stamp.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------
# One version of the workspace, as the page shows it


@dataclass(frozen=True)
class Audience:
    """A set of lists a person may be on; ``names`` in the workspace's order."""

    names: tuple[str, ...]
    count: int  # people who get exactly this version

    @property
    def lists(self) -> frozenset[str]:
        return frozenset(self.names)

    @property
    def key(self) -> str:
        return audience_key(self.lists)

    @property
    def label(self) -> str:
        if len(self.names) == 1:
            return f"{self.names[0]} ({self.count})"
        return f"{' + '.join(self.names)} ({self.count} on all of them)"


@dataclass
class Shown:
    """One person's message, decoded for the tabs."""

    recipient: Recipient
    data: bytes
    html: str
    text: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, recipient: Recipient, data: bytes) -> Shown:
        msg = message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        html_part = msg.get_body(preferencelist=("html",))
        text_part = msg.get_body(preferencelist=("plain",))
        html = html_part.get_content() if isinstance(html_part, EmailMessage) else ""
        text = text_part.get_content() if isinstance(text_part, EmailMessage) else ""
        headers = [(name, str(value)) for name, value in msg.items()]
        return cls(recipient, data, html, text, headers)

    @property
    def source(self) -> str:
        return self.data.decode("ascii", "replace")

    def header(self, name: str) -> str:
        return next((v for n, v in self.headers if n.lower() == name.lower()), "")


@dataclass
class _Plan:
    plan: SendPlan | None
    recipients: list[Recipient]
    problems: list[Problem]
    template: MessageTemplate | None = None


@dataclass
class _View(Severities):
    """Everything that depends only on the files: rebuilt when the version changes."""

    version: str
    ws: Workspace | None
    findings: list[Problem]  # check, then the lists' bad rows
    fatal: list[Problem]  # the workspace itself could not be read
    audiences: list[Audience]
    plans: dict[frozenset[str], _Plan] = field(default_factory=dict)
    messages: dict[tuple[frozenset[str], str], Shown] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _problems(self) -> list[Problem]:
        return self.findings

    def audience(self, key: str | None) -> Audience | None:
        found = next((a for a in self.audiences if a.key == key), None)
        return found or (self.audiences[0] if self.audiences else None)


def _problem(file: str, exc: BaseException) -> Problem:
    return Problem(file, None, None, f"{type(exc).__name__}: {exc}")


def _build_view(root: Path, issue: Path, version: str, check: CheckFn) -> _View:
    try:
        ws = Workspace.open(root)
    except ProblemsError as exc:
        return _View(version, None, exc.problems, exc.problems, [])
    except Exception as exc:  # the preview keeps running whatever the files hold
        fatal = [_problem(CONFIG_NAME, exc)]
        return _View(version, None, fatal, fatal, [])
    try:
        findings = list(check(ws, issue))
    except Exception as exc:
        findings = [_problem(ws.display(issue), exc)]
    audiences: list[Audience] = []
    try:
        selection = select(ws.config.recipients_dir, ws.root, ws.lists)
    except ProblemsError as exc:
        findings.extend(exc.problems)
    else:
        findings.extend(selection.problems)
        for name in ws.lists:
            report = selection.reports.get(name)
            audiences.append(Audience((name,), report.valid if report else 0))
        combos: dict[frozenset[str], int] = {}
        for r in selection.recipients:
            if len(r.lists) > 1:
                key = r.audiences
                combos[key] = combos.get(key, 0) + 1
        order = {name: n for n, name in enumerate(ws.lists)}
        for lists, count in sorted(
            combos.items(), key=lambda kv: (len(kv[0]), sorted(order[n] for n in kv[0]))
        ):
            audiences.append(Audience(tuple(sorted(lists, key=order.__getitem__)), count))
    return _View(version, ws, findings, [], audiences)


def _plan(view: _View, issue: Path, audience: Audience) -> _Plan:
    """What a send to exactly these lists would make, and who gets this version."""
    with view.lock:
        cached = view.plans.get(audience.lists)
    if cached is not None:
        return cached
    ws = view.ws
    assert ws is not None
    try:
        plan = plan_send(ws, issue, audience.names)
    except ProblemsError as exc:
        # The people are still worth listing while the issue is being fixed.
        try:
            selection = select(ws.config.recipients_dir, ws.root, audience.names)
            people = [r for r in selection.recipients if r.audiences == audience.lists]
        except ProblemsError:
            people = []
        made = _Plan(None, people, exc.problems)
    else:
        people = [r for r in plan.recipients if r.audiences == audience.lists]
        try:
            template = plan.templates(ws)[audience.lists] if people else None
        except ValueError as exc:  # a sender, domain or unsubscribe address mail cannot carry
            made = _Plan(None, people, [Problem(CONFIG_NAME, None, None, str(exc))])
        else:
            made = _Plan(plan, people, [], template)
    with view.lock:
        return view.plans.setdefault(audience.lists, made)


def _find(people: Sequence[Recipient], email: str | None) -> Recipient | None:
    if email:
        wanted = address_key(email)
        for r in people:
            if address_key(r.email) == wanted:
                return r
    return people[0] if people else None


def _matches(r: Recipient, words: Sequence[str]) -> bool:
    hay = f"{r.name} {r.email} {' '.join(r.fields.values())}".casefold()
    return all(w in hay for w in words)


def search(people: Sequence[Recipient], query: str, limit: int = SEARCH_LIMIT) -> list[Recipient]:
    """People whose name, address or any field holds every word of ``query``."""
    words = query.casefold().split()
    found: list[Recipient] = []
    for r in people:
        if _matches(r, words):
            found.append(r)
            if len(found) >= limit:
                break
    return found


# ---------------------------------------------------------------------------
# Test sends


@dataclass(frozen=True)
class TestResult:
    ok: bool
    message: str
    transport: str
    files: tuple[str, ...] = ()
    help: str = ""  # how to set up SMTP, when tests are only saved as files

    __test__ = False  # not a pytest class


def smtp_help(ws: Workspace) -> str:
    return (
        f"Tests are not emailed from this folder yet: newsletter.toml says "
        f'[send] transport = "{ws.config.transport}", so the test is saved as a .eml file '
        f"to open in your mail client. To email tests (and issues) for real, set "
        f'transport = "smtp" under [send] and your mail server\'s host, port, security '
        f"and username under [smtp]; put the password in the environment variable "
        f"{ws.config.smtp.password_env} (never in the file), then start the preview again."
    )


def send_test(ws: Workspace, plan: SendPlan, person: Recipient, to: str) -> TestResult:
    """``newsletter send --test-to``: the real message of ``person``'s lists, to ``to``."""
    chosen = ws.config.transport
    try:
        report = send_test_copy(plan, ws, [to], as_recipient=person, kind=chosen)
    except TransportError as exc:
        return TestResult(False, str(exc), chosen)
    if report.failures:
        address, outcome = report.failures[0]
        code = f"{outcome.code} " if outcome.code else ""
        return TestResult(False, f"{address}: {outcome.state}: {code}{outcome.text}", chosen)
    if chosen == "smtp":
        smtp = ws.config.smtp
        return TestResult(
            True,
            f"Sent a [TEST] of the {report.key} version, personalised as {person.email}, to {to} "
            f"through {smtp.host}:{smtp.port}.",
            chosen,
        )
    files = tuple(ws.display(Path(o.text)) for _, o in report.results)
    return TestResult(
        True,
        f"Saved a [TEST] of the {report.key} version, personalised as {person.email}, for {to} "
        f"in {', '.join(files)}. Open it in your mail client.",
        chosen,
        files,
        smtp_help(ws),
    )


# ---------------------------------------------------------------------------
# The server


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _page_template() -> jinja2.Template:
    source = resources.files("sender").joinpath("preview_page.html").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(source)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    preview: PreviewServer


class PreviewServer:
    """A preview of one issue at ``http://127.0.0.1:PORT/``.

    ``port=0`` picks a free port (see ``.port`` / ``.url``). Start it in a
    thread with ``start()`` and stop it with ``stop()`` (or use it as a
    context manager), or block in ``serve_forever()``. ``check`` gives the
    findings of ``newsletter check`` for the issue.
    """

    def __init__(
        self,
        root: Path,
        issue: Path,
        *,
        check: CheckFn,
        port: int = 8025,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.issue = issue.resolve()
        self.check = check
        self.on_error = on_error
        self.token = secrets.token_urlsafe(32)
        self._page = _page_template()
        self._view: _View | None = None
        self._view_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._httpd = _HTTPServer((HOST, port), _Handler)
        self._httpd.preview = self
        self.port: int = self._httpd.server_address[1]

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset({f"{HOST}:{self.port}", f"localhost:{self.port}"})

    def start(self) -> PreviewServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"preview:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------

    def version(self) -> str:
        return workspace_version(self.root, self.issue)

    def view(self) -> _View:
        version = self.version()
        with self._view_lock:
            if self._view is None or self._view.version != version:
                self._view = _build_view(self.root, self.issue, version, self.check)
            return self._view

    def shown(
        self, view: _View, audience: Audience, email: str | None
    ) -> tuple[_Plan, Shown | None]:
        planned = _plan(view, self.issue, audience)
        person = _find(planned.recipients, email)
        if person is None or planned.template is None:
            return planned, None
        key = (audience.lists, person.email)
        with view.lock:
            cached = view.messages.get(key)
        if cached is not None:
            return planned, cached
        shown = Shown.parse(person, planned.template.render(person))
        with view.lock:
            if len(view.messages) >= _CACHED_MESSAGES:
                view.messages.clear()
            view.messages[key] = shown
        return planned, shown

    # -- pages -----------------------------------------------------------------

    def render_page(self, query: dict[str, str], nonce: str) -> str:
        view = self.view()
        audience = view.audience(query.get("audience"))
        planned: _Plan | None = None
        shown: Shown | None = None
        if view.ws is not None and audience is not None:
            planned, shown = self.shown(view, audience, query.get("recipient"))
        people = planned.recipients if planned else []
        q = query.get("q", "")
        ws = view.ws
        params = {"audience": audience.key if audience else ""}
        if shown:
            params["recipient"] = shown.recipient.email
        wanted = query.get("recipient", "")
        missing = (
            wanted
            if wanted and shown and address_key(wanted) != address_key(shown.recipient.email)
            else ""
        )
        state = {
            "version": view.version,
            "token": self.token,
            "audience": params["audience"],
            "recipient": params.get("recipient", ""),
        }
        return self._page.render(
            title=(planned.plan.issue.title if planned and planned.plan else None),
            issue=ws.display(self.issue) if ws else str(self.issue),
            view=view,
            audience=audience,
            planned=planned,
            shown=shown,
            people=search(people, q),
            total=len(people),
            q=q,
            missing=missing,
            message_url="/message?" + urlencode({**params, "v": view.version}),
            transport=ws.config.transport if ws else "eml",
            smtp=ws.config.smtp if ws else None,
            smtp_help=smtp_help(ws) if ws else "",
            outbox=(
                ws.display(outbox_folder(ws, planned.plan.issue) / "tests")
                if ws and planned and planned.plan
                else "the outbox"
            ),
            nonce=nonce,
            state=state,
            link=lambda **kw: "/?" + urlencode({k: v for k, v in kw.items() if v}),
        )

    def recipients_json(self, query: dict[str, str]) -> dict[str, Any]:
        view = self.view()
        audience = view.audience(query.get("audience"))
        if view.ws is None or audience is None:
            return {"total": 0, "people": []}
        planned = _plan(view, self.issue, audience)
        found = search(planned.recipients, query.get("q", ""))
        return {
            "total": len(planned.recipients),
            "people": [{"email": r.email, "name": r.name} for r in found],
        }

    def post_test(self, form: dict[str, str]) -> tuple[HTTPStatus, TestResult]:
        view = self.view()
        ws = view.ws
        if ws is None:
            return HTTPStatus.CONFLICT, TestResult(
                False, "newsletter.toml has errors; fix them first", "?"
            )
        try:
            to = validate_email(
                form.get("to", "").strip(), check_deliverability=False, allow_smtputf8=False
            ).ascii_email
        except EmailNotValidError as exc:
            return HTTPStatus.BAD_REQUEST, TestResult(
                False, f"'{form.get('to', '')}' is not an email address: {exc}", ws.config.transport
            )
        audience = view.audience(form.get("audience"))
        if audience is None:
            return HTTPStatus.CONFLICT, TestResult(False, "there are no lists", ws.config.transport)
        planned = _plan(view, self.issue, audience)
        person = _find(planned.recipients, form.get("recipient"))
        if planned.plan is None or person is None:
            reason = (
                "the issue has errors (see the Check tab); no test was sent"
                if planned.problems
                else "nobody on this list to personalise the test as"
            )
            return HTTPStatus.CONFLICT, TestResult(False, reason, ws.config.transport)
        result = send_test(ws, planned.plan, person, to)
        return HTTPStatus.OK, result


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "newsletter-preview"
    sys_version = ""

    @property
    def preview(self) -> PreviewServer:
        return self.server.preview

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the library never prints

    # -- checks ----------------------------------------------------------------

    def _host(self) -> str:
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.preview.hosts:
            raise _Refused(
                HTTPStatus.MISDIRECTED_REQUEST,
                f"This preview only answers at {self.preview.url} (Host was {host or 'missing'}).",
            )
        return host

    def _same_origin(self, host: str) -> None:
        own = f"http://{host}"
        origin = self.headers.get("Origin")
        if origin is not None:
            if origin != own:
                raise _Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused ({origin})")
        else:
            referer = urlsplit(self.headers.get("Referer") or "")
            if f"{referer.scheme}://{referer.netloc}" != own:
                raise _Refused(HTTPStatus.FORBIDDEN, "request without Origin or Referer refused")
        fetch_site = self.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site != "same-origin":
            raise _Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused ({fetch_site})")

    def _split(self) -> tuple[str, dict[str, str]]:
        if not self.path.startswith("/"):
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad request target")
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return parts.path, query

    # -- answers ---------------------------------------------------------------

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: HTTPStatus, text: str) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def _json(self, status: HTTPStatus, data: object) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), "application/json")

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except _Refused as exc:
            self._text(exc.status, exc.reason)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug of ours: say so, keep serving
            if self.preview.on_error:
                self.preview.on_error(f"{self.command} {self.path}: {type(exc).__name__}: {exc}")
            self._text(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                f"Something went wrong inside the preview ({type(exc).__name__}: {exc}).",
            )

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_HEAD(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _get(self) -> None:
        self._host()
        path, query = self._split()
        preview = self.preview
        if path == "/":
            nonce = secrets.token_urlsafe(16)
            page = preview.render_page(query, nonce)
            csp = (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                "img-src 'self' data:; connect-src 'self'; frame-src 'self'; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
            )
            self._send(
                HTTPStatus.OK,
                page.encode("utf-8"),
                "text/html; charset=utf-8",
                {"Content-Security-Policy": csp, "X-Frame-Options": "DENY"},
            )
        elif path == "/version":
            self._text(HTTPStatus.OK, preview.version())
        elif path == "/message":
            self._message(query)
        elif path == "/source":
            self._message(query, raw=True)
        elif path == "/recipients":
            self._json(HTTPStatus.OK, preview.recipients_json(query))
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found")

    def _message(self, query: dict[str, str], *, raw: bool = False) -> None:
        preview = self.preview
        view = preview.view()
        audience = view.audience(query.get("audience"))
        shown = None
        if view.ws is not None and audience is not None:
            _, shown = preview.shown(view, audience, query.get("recipient"))
        if shown is None:
            self._text(HTTPStatus.NOT_FOUND, "no message to show: see the preview page")
        elif raw:
            self._send(HTTPStatus.OK, shown.data, "text/plain; charset=us-ascii")
        else:
            self._send(
                HTTPStatus.OK,
                shown.html.encode("utf-8"),
                "text/html; charset=utf-8",
                {"Content-Security-Policy": MESSAGE_CSP},
            )

    def _post(self) -> None:
        host = self._host()
        path, _ = self._split()
        self._same_origin(host)
        if path != "/send-test":
            raise _Refused(HTTPStatus.NOT_FOUND, "not found")
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the form as a web form")
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            raise _Refused(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if not 0 <= length <= MAX_BODY:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "form too large")
        body = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(body).items()}
        token = form.get("token", "")
        if not hmac.compare_digest(token.encode(), self.preview.token.encode()):
            raise _Refused(
                HTTPStatus.FORBIDDEN,
                "missing or wrong token: reload the preview page and try again",
            )
        status, result = self.preview.post_test(form)
        self._json(
            status,
            {
                "ok": result.ok,
                "message": result.message,
                "transport": result.transport,
                "files": list(result.files),
                "help": result.help,
            },
        )
