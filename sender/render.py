"""Issue × audiences -> Variant: Jinja stage 1, MJML, CSS inlining, text part.

Done once per distinct audience set, never per recipient. Placeholders from
the YAML travel through every step as inert tokens and come back in canonical
form at the end, for the message stage to fill per person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import jinja2
import mjml
from markupsafe import Markup

from . import markup
from .audiences import EVERYONE, audience_key, parse_key
from .config import Config
from .inline import engine
from .issue import Issue
from .placeholders import Placeholder, Tokens, find
from .problems import Problems, ProblemsError
from .variant import Variant

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
# mjml-python ignores inline="inline"; that CSS goes to the inliner instead.
_INLINE_STYLE = re.compile(r'<mj-style\s+inline="inline"\s*>(.*?)</mj-style>', re.S)


def long_date(issue: Issue) -> str:
    d = issue.date
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def template_names(templates_dir: Path) -> list[str]:
    """Looks a user can choose: <name>.mjml.j2 with a matching .txt.j2; _base is not one."""
    return sorted(
        p.name.removesuffix(".mjml.j2")
        for p in templates_dir.glob("*.mjml.j2")
        if not p.name.startswith("_")
        and p.with_name(p.name.replace(".mjml.j2", ".txt.j2")).exists()
    )


def web_copy_url(config: Config, issue: Issue, audiences: frozenset[str]) -> str | None:
    """Where the archive publishes this variant's web copy ("view in browser")."""
    if not config.web_url:
        return None
    base = config.web_url if config.web_url.endswith("/") else config.web_url + "/"
    return urljoin(base, f"{issue.date.year}/{issue.slug}/{audience_key(audiences)}.html")


@dataclass(frozen=True)
class _Prepared:
    """Issue-level work shared by every variant: Markdown rendered once."""

    tokens: Tokens
    html: dict[str, Any]
    text: dict[str, Any]
    sections_html: list[dict[str, Any]]
    sections_text: list[dict[str, Any]]


class Renderer:
    """Holds the Jinja environments and the inliner for one workspace."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.inline = engine(config.inliner)
        loader = jinja2.FileSystemLoader(config.templates_dir)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "keep_trailing_newline": True,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self.html_env = jinja2.Environment(autoescape=True, **common)
        self.text_env = jinja2.Environment(autoescape=False, **common)

    def variants(self, issue: Issue, audience_sets: Iterable[frozenset[str]]) -> list[Variant]:
        prepared = self._prepare(issue)
        return [self._variant(issue, prepared, frozenset(a)) for a in audience_sets]

    def variant(self, issue: Issue, audiences: frozenset[str]) -> Variant:
        return self.variants(issue, [audiences])[0]

    # -- issue-level ---------------------------------------------------------
    def _prepare(self, issue: Issue) -> _Prepared:
        tokens = Tokens()
        p = tokens.protect

        def md(value: str | None) -> Markup | None:
            return Markup(markup.to_html(p(value))) if value else None

        def txt(value: str | None) -> str | None:
            return markup.to_text(p(value)) if value else None

        images = self._image_url
        html = {
            "title": p(issue.title),
            "subtitle": p(issue.subtitle) if issue.subtitle else None,
            "preheader": p(issue.preheader) if issue.preheader else None,
            "greeting": Markup(markup.to_inline_html(p(issue.greeting)))
            if issue.greeting
            else None,
            "intro": md(issue.intro),
            "sign_off": md(issue.sign_off),
        }
        text = {
            "title": p(issue.title),
            "subtitle": p(issue.subtitle) if issue.subtitle else None,
            "greeting": markup.wrap(p(issue.greeting)) if issue.greeting else None,
            "intro": txt(issue.intro),
            "sign_off": txt(issue.sign_off),
        }
        sections_html = []
        sections_text = []
        for s in issue.sections:
            sections_html.append(
                {
                    "heading": p(s.heading),
                    "body": md(s.body),
                    "image": {
                        "src": images(issue, s.image.src),
                        "alt": p(s.image.alt),
                        "href": p(s.image.href) if s.image.href else None,
                    }
                    if s.image
                    else None,
                    "button": {"label": p(s.button.label), "url": p(s.button.url)}
                    if s.button
                    else None,
                }
            )
            sections_text.append(
                {
                    "heading": p(s.heading),
                    "body": txt(s.body),
                    "button": {"label": p(s.button.label), "url": p(s.button.url)}
                    if s.button
                    else None,
                }
            )
        return _Prepared(tokens, html, text, sections_html, sections_text)

    def _image_url(self, issue: Issue, src: str) -> str:
        if src.startswith(("https://", "http://")) or not self.config.web_url:
            return src
        # Relative images are published with the archive copy of the issue.
        base = (
            self.config.web_url if self.config.web_url.endswith("/") else self.config.web_url + "/"
        )
        return urljoin(base, f"{issue.date.year}/{issue.slug}/{src}")

    # -- per audience set ----------------------------------------------------
    def _variant(self, issue: Issue, prepared: _Prepared, audiences: frozenset[str]) -> Variant:
        audiences = frozenset() if EVERYONE in audiences else audiences
        chosen = [i for i, s in enumerate(issue.sections) if s.is_for(audiences)]
        context = self._context(issue, audiences)
        html_sections = [
            {**prepared.sections_html[i], "number": n} for n, i in enumerate(chosen, start=1)
        ]
        text_sections = [
            {**prepared.sections_text[i], "number": n} for n, i in enumerate(chosen, start=1)
        ]
        try:
            mjml_source = self.html_env.get_template(f"{issue.template}.mjml.j2").render(
                {**context, "issue": {**prepared.html, **context["issue"]}},
                sections=html_sections,
            )
            text = self.text_env.get_template(f"{issue.template}.txt.j2").render(
                {**context, "issue": {**prepared.text, **context["issue"]}},
                sections=text_sections,
            )
        except jinja2.TemplateError as exc:
            raise _template_problem(exc, self.config.templates_dir) from None

        inline_css = "\n".join(_INLINE_STYLE.findall(mjml_source))
        mjml_source = _INLINE_STYLE.sub("", mjml_source)
        html = mjml.mjml2html(mjml_source, disable_comments=False, fonts={})
        html = self.inline(html, inline_css)
        restore = prepared.tokens.restore
        html = restore(html)
        text = restore(text).rstrip() + "\n"
        subject = issue.subject
        used = [ph for part in (subject, html, text) for _, ph in find(part)]
        return Variant(
            slug=issue.slug,
            audiences=audiences,
            subject=subject,
            preheader=issue.preheader,
            html=html,
            text=text,
            fields=frozenset(ph.field for ph in used),
            required=frozenset(ph.field for ph in used if ph.default is None),
        )

    def _context(self, issue: Issue, audiences: frozenset[str]) -> dict[str, Any]:
        c = self.config
        return {
            "newsletter": {
                "name": c.name,
                "organisation": c.organisation,
                "address": c.address,
                "lang": c.lang,
                "unsubscribe": c.unsubscribe,
                "unsubscribe_label": (c.unsubscribe or "").removeprefix("mailto:").split("?")[0],
            },
            "issue": {
                "date": long_date(issue),
                "iso_date": issue.date.isoformat(),
                "numbered": issue.numbered,
                "author": issue.author,
                "web_url": web_copy_url(c, issue, audiences),
            },
            "audiences": sorted(audiences) or [EVERYONE],
        }


def _template_problem(exc: jinja2.TemplateError, templates_dir: Path) -> ProblemsError:
    problems = Problems()
    name = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
    line = getattr(exc, "lineno", None)
    problems.error(
        str(templates_dir / Path(str(name)).name),
        line,
        None,
        f"template error: {exc.message or exc}",
        "this is in the look (templates/), not in your issue; undo the last template change",
    )
    return ProblemsError(problems.items)


def audience_sets(names: Sequence[str], lists: Sequence[str]) -> list[frozenset[str]]:
    """Parse --audience values ('headteachers', 'a+b', 'everyone').

    Default: each list alone, and everyone."""
    if not names:
        return [frozenset([n]) for n in lists] + [frozenset()]
    out = []
    for name in names:
        out.append(parse_key(name))
    return out


__all__ = ["Placeholder", "Renderer", "Variant", "audience_sets", "long_date", "template_names"]
