"""The preview page: ``page.html``, a jinja template, filled from a ``View``.

Autoescaping is on because people's names, addresses and the issue's text all
end up in the page; ``StrictUndefined`` turns a name the template and this
module disagree on into an error instead of a blank.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

import jinja2

from ..recipient import address_key
from ..send import outbox_folder
from .view import Plan, Shown, View, search, show, smtp_help

__all__ = ["page_template", "render_page"]


def page_template() -> jinja2.Template:
    source = resources.files("sender.preview").joinpath("page.html").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(source)


def render_page(
    template: jinja2.Template,
    view: View,
    issue: Path,
    token: str,
    query: dict[str, str],
    nonce: str,
) -> str:
    """The page for ``query`` (audience, recipient, search words) as this ``view`` shows it."""
    audience = view.audience(query.get("audience"))
    planned: Plan | None = None
    shown: Shown | None = None
    if view.ws is not None and audience is not None:
        planned, shown = show(view, issue, audience, query.get("recipient"))
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
        "token": token,
        "audience": params["audience"],
        "recipient": params.get("recipient", ""),
    }
    return template.render(
        title=(planned.plan.issue.title if planned and planned.plan else None),
        issue=ws.display(issue) if ws else str(issue),
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
