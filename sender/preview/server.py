"""The preview's web server: one page for one issue, on this computer only.

People's names and addresses are on these pages, so the server:

* listens on 127.0.0.1 only, never on other interfaces;
* gives each request ``request_timeout`` seconds (10 by default) to arrive,
  all of it, and closes the connection of a client that takes longer: one
  that sends nothing, or a byte now and then, does not keep a thread; a
  form shorter than its Content-Length is refused (400), not read in part;
* refuses a request with two Host (or two Content-Length) headers (400):
  which one counts would be a guess, and a proxy might guess otherwise;
* answers only requests whose Host is the address it serves (127.0.0.1:PORT
  or localhost:PORT): a web page on another site cannot reach it through a
  DNS name rebound to 127.0.0.1 (421 otherwise);
* takes a POST only from its own page: same Origin (or Referer) and the
  random token of this run (403 otherwise);
* shows the message in a sandboxed iframe, served with a Content-Security-
  Policy that runs no script and loads nothing but images.
"""

from __future__ import annotations

import hmac
import io
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .page import page_template, render_page
from .view import (
    CheckFn,
    View,
    as_if_dark,
    build_view,
    post_test,
    recipients_json,
    show,
    with_local_pictures,
    workspace_version,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["HOST", "MAX_BODY", "MESSAGE_CSP", "PreviewServer"]

HOST = "127.0.0.1"

# The message in the iframe: no script, no fetches, no fonts; images and its own styles.
MESSAGE_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)
MAX_BODY = 16 * 1024
REQUEST_TIMEOUT = 10.0
# Headers a request may carry once only (RFC 9110 7.2 and 8.6).
_ONCE = ("Host", "Content-Length")


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Deadline(io.RawIOBase):
    """The connection's socket, read against one deadline per request.

    A socket timeout starts again with every read, so a client sending a byte
    now and then would keep its thread for ever; the deadline does not move
    until ``restart()``. Writes keep the plain timeout of ``seconds``.
    """

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def restart(self) -> None:
        self._deadline = time.monotonic() + self._seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long to arrive")
        self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._seconds)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Connections the kernel holds until we accept them (the standard library's 5 left
    # a burst of a few hundred waiting for SYN retries, some never answered).
    request_queue_size = 1024
    preview: PreviewServer


class PreviewServer:
    """A preview of one issue at ``http://127.0.0.1:PORT/``.

    ``port=0`` picks a free port (see ``.port`` / ``.url``). Start it in a
    thread with ``start()`` and stop it with ``stop()`` (or use it as a
    context manager), or block in ``serve_forever()``. ``check`` gives the
    findings of ``newsletter check`` for the issue. A request must arrive
    within ``request_timeout`` seconds, or its connection is closed.
    """

    def __init__(
        self,
        root: Path,
        issue: Path,
        *,
        check: CheckFn,
        port: int = 8025,
        on_error: Callable[[str], None] | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.root = root.resolve()
        self.issue = issue.resolve()
        self.check = check
        self.on_error = on_error
        self.request_timeout = request_timeout
        self.token = secrets.token_urlsafe(32)
        self.page = page_template()
        self._view: View | None = None
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

    def view(self) -> View:
        version = self.version()
        with self._view_lock:
            if self._view is None or self._view.version != version:
                self._view = build_view(self.root, self.issue, version, self.check)
            return self._view


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "newsletter-preview"
    sys_version = ""

    @property
    def preview(self) -> PreviewServer:
        return self.server.preview

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the library never prints

    # -- reading ---------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        seconds = self.preview.request_timeout
        self.connection.settimeout(seconds)
        self._deadline = _Deadline(self.connection, seconds)
        self.rfile.close()
        self.rfile = io.BufferedReader(self._deadline)

    def handle_one_request(self) -> None:
        self._deadline.restart()
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError):  # too slow, or gone: nobody to answer
            self.close_connection = True

    # -- checks ----------------------------------------------------------------

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        for name in _ONCE:
            if len(self.headers.get_all(name, [])) > 1:
                self.close_connection = True
                self._text(HTTPStatus.BAD_REQUEST, f"more than one {name} header")
                return False
        return True

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
            page = render_page(
                preview.page, preview.view(), preview.issue, preview.token, query, nonce
            )
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
            self._json(HTTPStatus.OK, recipients_json(preview.view(), preview.issue, query))
        elif path.startswith("/picture/"):
            picture = preview.view().picture(path.removeprefix("/picture/"))
            if picture is None:
                self._text(HTTPStatus.NOT_FOUND, "no such picture in this issue")
            else:
                self._send(HTTPStatus.OK, picture.data, picture.mime)
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found")

    def _message(self, query: dict[str, str], *, raw: bool = False) -> None:
        preview = self.preview
        view = preview.view()
        audience = view.audience(query.get("audience"))
        shown = None
        planned = None
        if view.ws is not None and audience is not None:
            planned, shown = show(view, preview.issue, audience, query.get("recipient"))
        if shown is None:
            self._text(HTTPStatus.NOT_FOUND, "no message to show: see the preview page")
        elif raw:
            self._send(HTTPStatus.OK, shown.data, "text/plain; charset=us-ascii")
        else:
            html = shown.html
            if planned is not None and view.ws is not None:
                html = with_local_pictures(html, planned, view.ws)
            if query.get("dark") == "1":
                html = as_if_dark(html)
            self._send(
                HTTPStatus.OK,
                html.encode("utf-8"),
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
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            body = b""
        if len(body) != length:  # the rest did not come in time, or the client stopped sending
            self.close_connection = True
            raise _Refused(HTTPStatus.BAD_REQUEST, "the form is shorter than its Content-Length")
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        token = form.get("token", "")
        if not hmac.compare_digest(token.encode(), self.preview.token.encode()):
            raise _Refused(
                HTTPStatus.FORBIDDEN,
                "missing or wrong token: reload the preview page and try again",
            )
        status, result = post_test(self.preview.view(), self.preview.issue, form)
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
