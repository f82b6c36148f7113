"""newsletter serve: the archive and the unsubscribe pages, as a web server."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from .common import InputError, console, open_workspace

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp


@click.command("serve")
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to serve on; 0 picks a free one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. The default answers this computer only: the web server "
    "that gives your https:// address passes requests on to it. 0.0.0.0 listens on every "
    "network interface.",
)
@click.pass_context
def command(ctx: click.Context, port: int, host: str) -> None:
    """Serve the archive and each reader's unsubscribe page on the web.

    Every email links to https://…/u/TOKEN, each person's private link
    ([unsubscribe] url). Opening it shows which lists it unsubscribes from and
    one button; mail programs' own Unsubscribe (RFC 8058 one-click) needs no
    page. Either way the person is recorded in the ledger and not sent to on
    those lists again. Everything else is the archive folder: each sent
    issue's web copy, the indexes and the feeds.

    The emails need this reachable at the https:// address in newsletter.toml:
    run it on the computer that holds this folder and its ledger, behind a web
    server with HTTPS (see the README). Requests are logged with tokens hidden.
    Stop with Ctrl+C.

    \b
    Examples:
      newsletter serve
      newsletter serve --port 8081
      newsletter serve --host 0.0.0.0 --port 8080
    """
    ws = open_workspace(ctx)
    try:
        from ..web import NEEDS, create_app
    except ImportError as exc:  # starlette: the message says what to install
        raise InputError(str(exc)) from None
    try:
        import uvicorn  # noqa: F401 (here to say it is missing before anything starts)
    except ImportError:
        raise InputError(NEEDS) from None
    listening = _listen(host, port)
    bound = listening.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    console.print(f"Serving {escape(str(ws.root))} at http://{shown}:{bound}/")
    archive = ws.config.resolve(ws.config.archive)
    if not archive.is_dir():
        console.print(
            f"{escape(ws.display(archive))} does not exist yet: 'newsletter archive' makes it."
        )
    console.print("Press Ctrl+C to stop.")
    sys.stdout.flush()
    _log_to_stderr()
    try:
        server(create_app(ws.root)).run(sockets=[listening])
    except KeyboardInterrupt:
        pass
    finally:
        listening.close()
    console.print("Stopped.")


def server(app: ASGIApp) -> uvicorn.Server:
    """The uvicorn server ``newsletter serve`` runs (and the tests run): no access log of
    its own, which would show each token; the app logs requests with tokens hidden."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_keep_alive=5,
        )
    )


def _listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise InputError(
            f"could not listen on {host} port {port} ({why}). If another "
            "program uses the port, stop it or choose another: --port 8081 (--port 0 picks "
            "a free one)."
        ) from None


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logging.getLogger("sender.web").setLevel(logging.INFO)
    for name in ("sender.web", "uvicorn"):
        logging.getLogger(name).addHandler(handler)
