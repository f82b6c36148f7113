"""Look at an issue as each person will get it: a local web server with live reload.

``PreviewServer`` serves one page for one issue file. The page shows the real
message of a chosen recipient (the bytes ``MessageTemplate.render`` makes for
them, decoded, not a re-render), switches audience and recipient, shows the
plain text, the headers, the raw source and the ``check`` findings, and
reloads itself when the issue, a template, a list or newsletter.toml changes.
It can send a test through the same path as ``newsletter send --test-to``.

``view`` builds what the page shows from the files, ``page`` fills the
template from it, and ``server`` answers the browser (its docstring says how
it keeps people's addresses on this computer). This package never prints;
``sender.cli.preview`` does.
"""

from .server import HOST, MESSAGE_CSP, PreviewServer
from .view import Audience, CheckFn, Shown, TestResult, workspace_version

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
