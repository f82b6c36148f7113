"""newsletter preview: the issue as each person will get it, in your browser, live."""

from __future__ import annotations

import errno
import sys
import webbrowser
from pathlib import Path

import click
from rich.markup import escape

from ..lint import check_issue
from ..preview import PreviewServer
from .common import InputError, console, console_err, open_workspace


@click.command("preview")
@click.argument("issue", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=8025,
    show_default=True,
    help="Port on 127.0.0.1 to serve on; 0 picks a free one.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in your web browser.")
@click.pass_context
def command(ctx: click.Context, issue: Path, port: int, open_browser: bool) -> None:
    """Look at an issue in your browser exactly as each person will get it.

    Starts a small web server on this computer only (127.0.0.1) and prints
    its address. The page shows the real email of a chosen person: pick the
    audience (each list, and each combination people are on) and search for
    anyone by name or email. Switch between desktop (600 px) and mobile
    (375 px) widths, and to the email's own dark mode (as a mail app set to
    dark shows it, whatever this computer's setting); tabs show the plain text, the
    headers, the raw source and what 'newsletter check' finds.

    The page reloads by itself when you save the issue, a template, a list
    or newsletter.toml, keeping what you chose; a mistake in the issue shows
    up in the page. "Send a test" sends the email shown to an address you
    type (through your mail server when [send] transport is "smtp"; otherwise
    it is saved as a .eml file in the outbox). Stop with Ctrl+C.

    \b
    Examples:
      newsletter preview newsletters/2012-07-13-peter-duxbury-briefing.yaml
      newsletter preview newsletters/2025-02-13-steve-kay-blog.yaml --open
      newsletter preview ISSUE.yaml --port 0
    """
    ws = open_workspace(ctx)
    if not issue.is_file():
        raise InputError(f"{ws.display(issue)}: no such file; issues live in newsletters/")
    try:
        server = PreviewServer(
            ws.root,
            issue,
            check=check_issue,
            port=port,
            on_error=lambda text: console_err.print(f"[red]preview:[/red] {escape(text)}"),
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"port {port} is already in use (another preview?). "
                "Stop it, or choose another port: --port 8026 (or --port 0 for any free one)."
            ) from None
        raise InputError(f"could not start the preview on port {port}: {exc}") from None
    console.print(f"Previewing {escape(ws.display(issue))} at {server.url}")
    console.print("Only this computer can open it. Press Ctrl+C to stop.")
    sys.stdout.flush()
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    console.print("Preview stopped.")
