"""What the preview page shows, built from the workspace's files.

The audiences (each list, and each combination people are on), the send plan
of each, one person's real message decoded for the tabs, the search over
people, the version that tells the page to reload, and what a test send says.
It reads no request and writes no markup, so the server and the page can both
build on a ``View`` without this module importing either.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from email_validator import EmailNotValidError, validate_email

from ..audiences import audience_key
from ..config import CONFIG_NAME
from ..message import MessageTemplate
from ..pictures import Picture, published
from ..problems import Problem, ProblemsError, Severities
from ..recipient import Recipient, address_key
from ..send import SendPlan, plan_send
from ..send import send_test as send_test_copy
from ..send.plan import chosen
from ..transports import TransportError
from ..workspace import Workspace

__all__ = [
    "SEARCH_LIMIT",
    "Audience",
    "CheckFn",
    "Plan",
    "Shown",
    "TestResult",
    "View",
    "as_if_dark",
    "build_view",
    "plan_for",
    "post_test",
    "recipients_json",
    "search",
    "send_test",
    "show",
    "smtp_help",
    "workspace_version",
]

CheckFn = Callable[[Workspace, Path], list[Problem]]

SEARCH_LIMIT = 20
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
    # Pictures: saving a new version of one shows it at once.
    for folder in (root / "newsletters", root / "images"):
        if folder.is_dir():
            yield from sorted(p for p in folder.rglob("*") if p.suffix.lower() in _PICTURES)


_PICTURES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}


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
class Plan:
    plan: SendPlan | None
    recipients: list[Recipient]
    problems: list[Problem]
    template: MessageTemplate | None = None


@dataclass
class View(Severities):
    """Everything that depends only on the files: rebuilt when the version changes."""

    version: str
    ws: Workspace | None
    findings: list[Problem]  # check, then the lists' bad rows
    fatal: list[Problem]  # the workspace itself could not be read
    audiences: list[Audience]
    plans: dict[frozenset[str], Plan] = field(default_factory=dict)
    messages: dict[tuple[frozenset[str], str], Shown] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The prepared local pictures shown so far, by digest: the only files served.
    pictures: dict[str, Picture] = field(default_factory=dict)

    def picture(self, digest: str) -> Picture | None:
        with self.lock:
            return self.pictures.get(digest)

    def _problems(self) -> list[Problem]:
        return self.findings

    def audience(self, key: str | None) -> Audience | None:
        found = next((a for a in self.audiences if a.key == key), None)
        return found or (self.audiences[0] if self.audiences else None)


def _problem(file: str, exc: BaseException) -> Problem:
    return Problem(file, None, None, f"{type(exc).__name__}: {exc}")


def build_view(root: Path, issue: Path, version: str, check: CheckFn) -> View:
    try:
        ws = Workspace.open(root)
    except ProblemsError as exc:
        return View(version, None, exc.problems, exc.problems, [])
    except Exception as exc:  # the preview keeps running whatever the files hold
        fatal = [_problem(CONFIG_NAME, exc)]
        return View(version, None, fatal, fatal, [])
    try:
        findings = list(check(ws, issue))
    except Exception as exc:
        findings = [_problem(ws.display(issue), exc)]
    audiences: list[Audience] = []
    try:
        selection = chosen(ws, ws.lists)
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
    return View(version, ws, findings, [], audiences)


def plan_for(view: View, issue: Path, audience: Audience) -> Plan:
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
            selection = chosen(ws, audience.names)
            people = [r for r in selection.recipients if r.audiences == audience.lists]
        except ProblemsError:
            people = []
        made = Plan(None, people, exc.problems)
    else:
        people = [r for r in plan.recipients if r.audiences == audience.lists]
        try:
            template = plan.templates(ws)[audience.lists] if people else None
        except ValueError as exc:  # a sender, domain or unsubscribe address mail cannot carry
            made = Plan(None, people, [Problem(CONFIG_NAME, None, None, str(exc))])
        else:
            made = Plan(plan, people, [], template)
            with view.lock:
                for variant in plan.variants.values():
                    view.pictures.update({pic.digest: pic for pic in variant.pictures})
    with view.lock:
        return view.plans.setdefault(audience.lists, made)


def _find(people: Sequence[Recipient], email: str | None) -> Recipient | None:
    if email:
        wanted = address_key(email)
        for r in people:
            if address_key(r.email) == wanted:
                return r
    return people[0] if people else None


def show(
    view: View, issue: Path, audience: Audience, email: str | None
) -> tuple[Plan, Shown | None]:
    """The plan of ``audience`` and the message of the person asked for (or its first)."""
    planned = plan_for(view, issue, audience)
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


def recipients_json(view: View, issue: Path, query: dict[str, str]) -> dict[str, Any]:
    audience = view.audience(query.get("audience"))
    if view.ws is None or audience is None:
        return {"total": 0, "people": []}
    planned = plan_for(view, issue, audience)
    found = search(planned.recipients, query.get("q", ""))
    return {
        "total": len(planned.recipients),
        "people": [{"email": r.email, "name": r.name} for r in found],
    }


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


def post_test(view: View, issue: Path, form: dict[str, str]) -> tuple[HTTPStatus, TestResult]:
    """The page's "Send a test" form, checked, sent, and the status to answer with."""
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
    # allow_smtputf8=False refuses every address that has no ASCII form.
    assert to is not None
    audience = view.audience(form.get("audience"))
    if audience is None:
        return HTTPStatus.CONFLICT, TestResult(False, "there are no lists", ws.config.transport)
    planned = plan_for(view, issue, audience)
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


def with_local_pictures(html: str, planned: Plan, ws: Workspace) -> str:
    """The message's HTML with its pictures (``cid:`` parts, or hosted addresses not yet
    published) pointing at the preview's own copies, so the page shows them as they
    will arrive."""
    if planned.template is None or planned.plan is None:
        return html
    issue = planned.plan.issue
    web = ws.config.web_url or ""
    for pic in planned.template.variant.pictures:
        local = f"/picture/{pic.digest}"
        html = html.replace(f"cid:{pic.cid(ws.config.domain)}", local)
        if web:
            html = html.replace(urljoin(web.rstrip("/") + "/", published(issue, pic.src)), local)
    return html


# The email's own dark mode, shown in the preview's frame whatever the computer's setting:
# its prefers-color-scheme rules made to match (or not), as in a mail app set to dark.
_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.I)
_SCHEMES = re.compile(r'(<meta\s+name="color-scheme"\s+content=")light dark"', re.I)


def as_if_dark(html: str) -> str:
    """The message's HTML as a mail program set to dark shows it: its dark rules apply
    (a feature every screen has), its light ones do not, and the page is dark."""
    html = _DARK.sub("(min-width: 0px)", html)
    html = _LIGHT.sub("(max-width: -1px)", html)
    return _SCHEMES.sub(r'\1dark"', html)
