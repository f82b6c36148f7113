"""The public web app of ``newsletter serve``: the archive, and each person's unsubscribe page.

An ASGI app (starlette). ``create_app(folder)`` makes it for a newsletter
folder; ``sender.web:app`` is the same for a server you run yourself
(``uvicorn sender.web:app``), reading the folder from NEWSLETTER_WORKSPACE
(else the newsletter.toml at or above the current folder).

- ``GET /u/TOKEN``: a page naming the lists the link unsubscribes from, and
  one button. A GET changes nothing: link checkers and mail scanners fetch
  every link in an email.
- ``POST /u/TOKEN`` with ``List-Unsubscribe=One-Click`` (RFC 8058, sent by
  the mail provider when a reader presses its Unsubscribe): unsubscribes at
  once and answers 200, with no page to confirm.
- ``POST /u/TOKEN`` from the page's button (``confirm=yes``): the same, then
  a page saying so. Taken only from this site's own page: its Origin (or
  Referer) must be this site, and Sec-Fetch-Site, when sent, same-origin.
- Anything else: the archive folder, file by file (a folder's index.html; no
  folder is ever listed, nothing outside it is served).

Unsubscribing twice changes nothing the second time. The token is the only
credential and says which person and lists: the pages show no address, and
a token is never logged (paths under /u/ are logged as ``/u/…``). A link that
is not a token, or one the ledger does not know, gets a short page and a 404.
The page needs no script, has ``lang``, one heading, a real ``<button>``,
contrast of at least 4.5:1, and fits a 375 px phone.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from email.parser import BytesParser
from email.utils import parseaddr
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from .audiences import key_lists
from .config import Config, WorkspaceNotFound
from .ledger import (
    LedgerError,
    LedgerReader,
    Suppression,
    TokenRecord,
    ledger_path,
    open_ledger,
    read_ledger,
)
from .problems import ProblemsError
from .tokens import looks_like
from .workspace import Workspace

NEEDS = (
    "newsletter serve needs starlette and uvicorn. Install them with: "
    "pip install 'newsletter-sender[serve]' (in a checkout: pip install -e '.[serve]')"
)

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # said plainly, with the command that installs it
    raise ImportError(NEEDS, name=exc.name) from exc

__all__ = ["ENVIRONMENT", "MAX_BODY", "NEEDS", "FromEnvironment", "app", "create_app"]

ENVIRONMENT = "NEWSLETTER_WORKSPACE"
MAX_BODY = 16 * 1024  # an unsubscribe POST is a few dozen bytes
log = logging.getLogger("sender.web")

ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058's body, as a form field
_UNDER_U = re.compile(r"^/u/[^/]*")

_STYLE = """
body{margin:0;background:#fff;color:#1a1a1a;
font:1.125rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
main{max-width:36rem;margin:0 auto;padding:2rem 1.25rem;overflow-wrap:anywhere}
h1{font-size:1.625rem;line-height:1.25;margin:0 0 1rem}
ul{padding-left:1.5rem}
li{font-weight:600}
a{color:#0b5394}
button{font:inherit;font-weight:600;color:#fff;background:#0b5394;border:2px solid #0b5394;
border-radius:6px;padding:.75rem 1.5rem;min-height:2.75rem;cursor:pointer;max-width:100%}
button:hover{background:#083b6b;border-color:#083b6b}
button:focus-visible,a:focus-visible{outline:3px solid #1a1a1a;outline-offset:3px}
.small{font-size:1rem;color:#4a4a4a}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# The pages run no script and load nothing; the token in their address stays on this site.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    # Not no-referrer: with it a browser sends "Origin: null" on the form's POST.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}


def create_app(workspace: Path | str | None = None) -> Starlette:
    """The app of the newsletter folder ``workspace`` (default: found from the current folder)."""
    ws = Workspace.open(Path(workspace) if workspace is not None else None)
    return _App(ws.config).starlette()


class FromEnvironment:
    """``sender.web:app``: the app of the folder NEWSLETTER_WORKSPACE names, made when the
    server starts; a folder that cannot be opened stops the start with the reason."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    def _made(self) -> ASGIApp:
        if self._app is None:
            self._app = create_app(os.environ.get(ENVIRONMENT) or None)
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None and scope["type"] == "lifespan":
            try:
                self._made()
            except (WorkspaceNotFound, ProblemsError) as exc:
                await receive()  # lifespan.startup
                reason = f"{ENVIRONMENT}={os.environ.get(ENVIRONMENT, '')!r}: {exc}"
                await send({"type": "lifespan.startup.failed", "message": reason})
                return
        await self._made()(scope, receive, send)


app = FromEnvironment()


@dataclass(frozen=True)
class _Link:
    """A token as the page needs it."""

    record: TokenRecord
    lists: tuple[str, ...]  # what it unsubscribes from: its lists but those none can leave
    already: bool  # each of them already unsubscribed


# -- the app -----------------------------------------------------------------------------


class _App:
    def __init__(self, config: Config) -> None:
        self.config = config
        own = urlsplit(config.web_url or "").netloc.lower()
        self.own_hosts = frozenset(h for h in (own,) if h)

    def starlette(self) -> Starlette:
        archive = _Archive(self.config.resolve(self.config.archive))
        routes = [
            Route("/u/{token}", self.page, methods=["GET"]),
            Route("/u/{token}", self.post, methods=["POST"]),
            Mount("/", app=archive),
        ]
        return Starlette(routes=routes, middleware=[Middleware(_Logged)])

    # -- the endpoints -------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        token = _token(request)
        if token is None:
            return self._unknown(request, "not a token")
        try:
            found = await run_in_threadpool(self._find, token)
        except LedgerError as exc:
            return self._unavailable(exc)
        if found is None:
            return self._unknown(request, "not in the ledger")
        if not found.lists:
            return self._html(200, *self._cannot())
        return self._html(200, *self._asking(found))

    async def post(self, request: Request) -> Response:
        token = _token(request)
        if token is None:
            return self._unknown(request, "not a token")
        body = await _body(request)
        if body is None:
            return self._html(413, "Too much sent", "<p>This page takes a button press only.</p>")
        fields = _fields(request.headers.get("content-type", ""), body)
        one_click = fields.get(ONE_CLICK[0]) == ONE_CLICK[1]
        if not one_click:
            if fields.get("confirm") != "yes":
                return self._html(400, "Nothing to do", _OPEN_AGAIN)
            refused = self._not_from_our_page(request)
            if refused:
                log.warning("unsubscribe form refused: %s", refused)
                return self._html(403, "Use the button on the unsubscribe page", _OPEN_AGAIN)
        how = "one-click (RFC 8058)" if one_click else "confirmed on the page"
        try:
            done = await run_in_threadpool(self._unsubscribe, token, how)
        except LedgerError as exc:
            return self._unavailable(exc)
        if done is None:
            return self._unknown(request, "not in the ledger")
        link, new = done
        if not link.lists:
            log.info("unsubscribe refused: the link is for lists people cannot leave")
            return self._html(403, *self._cannot())
        lists = "+".join(link.lists)
        log.info("%s from %s: %s", "unsubscribed" if new else "already unsubscribed", lists, how)
        if one_click:
            return PlainTextResponse("Unsubscribed.\n", headers=_PAGE_HEADERS)
        return self._html(200, *self._done(link))

    # -- the ledger (in a worker thread: SQLite waits for the disk) ---------------------

    def _link(self, ledger: LedgerReader, token: str) -> _Link | None:
        record = ledger.token(token)
        if record is None:
            return None
        # The send leaves these out of the token already; a list made one since counts too.
        lists = tuple(n for n in key_lists(record.lists) if n not in self.config.mandatory_lists)
        mine = [s for s in ledger.suppressions() if s.email == record.email]
        return _Link(record, lists, all(any(s.covers(n) for s in mine) for n in lists))

    def _find(self, token: str) -> _Link | None:
        with read_ledger(self.config) as ledger:
            return self._link(ledger, token)

    def _unsubscribe(self, token: str, how: str) -> tuple[_Link, bool] | None:
        """What the token stands for, and whether this unsubscribed them (False: already,
        or nothing to leave)."""
        if not ledger_path(self.config).exists():  # nothing sent yet: no token is known
            return None
        with open_ledger(self.config) as ledger:
            link = self._link(ledger, token)
            if link is None or not link.lists:
                return None if link is None else (link, False)
            new = ledger.suppress(
                Suppression(
                    email=link.record.email,
                    lists="+".join(link.lists),
                    reason="unsubscribed",
                    code="",
                    detail=how,
                    issue=link.record.issue,
                    source="web",
                    at="",  # the ledger's clock
                )
            )
        return link, new

    # -- checks --------------------------------------------------------------------------

    def _not_from_our_page(self, request: Request) -> str:
        """Why a form POST did not come from our page ('' when it did)."""
        headers = request.headers
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site != "same-origin":
            return f"Sec-Fetch-Site is {fetch_site}"
        origin = headers.get("origin")
        if origin is None:
            referer = urlsplit(headers.get("referer", ""))
            origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else ""
        if not origin or origin == "null":
            return "no Origin or Referer"
        came_from = urlsplit(origin).netloc.lower()
        host = headers.get("host", "").lower()
        if came_from and (came_from == host or came_from in self.own_hosts):
            return ""
        return (
            f"Origin {origin} is not this site (Host {host or 'missing'}); behind a proxy, "
            "pass the Host header on"
        )

    # -- pages ---------------------------------------------------------------------------

    @staticmethod
    def _lists(link: _Link) -> str:
        return "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in link.lists) + "</ul>"

    def _asking(self, link: _Link) -> tuple[str, str]:
        name = escape(self.config.name)
        if link.already:
            return "You are unsubscribed", (
                f"<p>You already get no more emails from {name} sent to:</p>"
                f"{self._lists(link)}{self._contact()}"
            )
        return f"Unsubscribe from {self.config.name}", (
            f"<p>Press the button to get no more emails from {name} sent to:</p>"
            f"{self._lists(link)}"
            '<form method="post"><button type="submit" name="confirm" value="yes">'
            "Unsubscribe</button></form>"
            '<p class="small">Emails you get as a member of other lists are not affected.</p>'
        )

    def _done(self, link: _Link) -> tuple[str, str]:
        return "You are unsubscribed", (
            f"<p>You will get no more emails from {escape(self.config.name)} sent to:</p>"
            f"{self._lists(link)}{self._contact()}"
        )

    def _cannot(self) -> tuple[str, str]:
        return "There is nothing to unsubscribe from here", (
            f"<p>The emails this link came with are ones {escape(self.config.organisation)} "
            "sends to everyone on their list, such as staff briefings, so they have no "
            f"unsubscribe.</p>{self._contact('Questions?')}"
        )

    def _contact(self, lead: str = "Changed your mind?") -> str:
        address = escape(parseaddr(self.config.reply_to or self.config.sender)[1])
        if not address:
            return ""
        return f'<p class="small">{lead} Write to <a href="mailto:{address}">{address}</a>.</p>'

    def _html(self, status: int, title: str, body: str) -> HTMLResponse:
        page = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>\n"
        )
        return HTMLResponse(page, status_code=status, headers=_PAGE_HEADERS)

    def _unknown(self, request: Request, why: str) -> HTMLResponse:
        log.warning("unsubscribe link not recognised (%s): %s /u/…", why, request.method)
        return self._html(
            404,
            "This unsubscribe link is not recognised",
            "<p>Check that the whole link from the email was used: open it from the email "
            "again rather than copying it.</p><p>If it still does not work, reply to the "
            "email and ask to be taken off the list.</p>",
        )

    def _unavailable(self, exc: LedgerError) -> HTMLResponse:
        log.error("unsubscribe page could not read the ledger: %s", exc)
        return self._html(
            503,
            "Unsubscribing is not possible just now",
            "<p>Nothing was changed. Please open the link from the email again later.</p>",
        )


_OPEN_AGAIN = "<p>Open the unsubscribe link from the email again and use its button.</p>"


def _token(request: Request) -> str | None:
    token = str(request.path_params["token"]).lower()
    return token if looks_like(token) else None


async def _body(request: Request) -> bytes | None:
    """The request's body, or None when it is longer than an unsubscribe ever is."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def _fields(content_type: str, body: bytes) -> dict[str, str]:
    """A form's fields, urlencoded or multipart (RFC 8058 allows both)."""
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields = {}
    for part in message.walk():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", "replace").strip()
    return fields


class _Archive:
    """The archive folder as static files; a 404 while nothing has been published."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = StaticFiles(directory=folder, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.folder.is_dir():
            await PlainTextResponse("Nothing has been published here yet.\n", 404)(
                scope, receive, send
            )
            return
        await self.files(scope, receive, send)


class _Logged:
    """Each request logged as ``METHOD PATH STATUS``, a path under /u/ as ``/u/…`` (a token
    is a credential); ``nosniff`` on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless an answer starts

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            log.info("%s %s %s", scope["method"], _UNDER_U.sub("/u/…", scope["path"]), status)
