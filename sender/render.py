"""Issue × audiences -> Variant: Jinja stage 1, MJML, CSS inlining, text part.

Done once per distinct audience set, never per recipient. Placeholders from
the YAML travel through every step as inert tokens and come back in canonical
form at the end, for the message stage to fill per person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import jinja2
import mjml
from markupsafe import Markup

from . import markup
from .audiences import EVERYONE, audience_key, parse_key
from .config import Config, unsubscribe_links
from .inline import engine
from .issue import Issue
from .pictures import Picture, PictureError, Pictures, is_local, published
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


# The looks shipped inside the package; a workspace's own templates/ overrides them by name.
SHIPPED_TEMPLATES = Path(__file__).parent / "templates"


def template_loader(templates_dir: Path) -> jinja2.BaseLoader:
    """The workspace's templates/ first, then the looks shipped with the package."""
    return jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(templates_dir), jinja2.FileSystemLoader(SHIPPED_TEMPLATES)]
    )


def template_names(templates_dir: Path) -> list[str]:
    """Looks a user can choose: <name>.mjml.j2 with a matching .txt.j2, in the workspace's
    templates/ or shipped with the package; _base is not one."""
    found = {p.name for folder in (templates_dir, SHIPPED_TEMPLATES) for p in folder.glob("*.j2")}
    return sorted(
        name.removesuffix(".mjml.j2")
        for name in found
        if name.endswith(".mjml.j2")
        and not name.startswith("_")
        and name.replace(".mjml.j2", ".txt.j2") in found
    )


# A version with this many sections or more starts with "In this issue" (contents: overrides).
CONTENTS_FROM = 6
# The archive's link from a web copy for these lists to their index: (href, label).
HomeLink = Callable[[frozenset[str]], tuple[str, str]]


def shows_contents(issue: Issue, sections: int) -> bool:
    """Whether a version with this many sections starts with a list of them."""
    return issue.contents if issue.contents is not None else sections >= CONTENTS_FROM


def signed(issue: Issue) -> bool:
    """Whether the sign-off already ends with the author's full name ("Steve Kay - Director
    of …"): then the email does not add the name and role after it again."""
    if not (issue.author and issue.sign_off):
        return False
    last = issue.sign_off.strip().rsplit("\n", 1)[-1]
    return issue.author.name.casefold() in last.casefold()


def web_copy_url(config: Config, issue: Issue, audiences: frozenset[str]) -> str | None:
    """Where the archive publishes this variant's web copy ("view in browser")."""
    if not config.web_url:
        return None
    return urljoin(_slash(config.web_url), published(issue, f"{audience_key(audiences)}.html"))


@dataclass(frozen=True)
class _Prepared:
    """Issue-level work shared by every variant: Markdown rendered once."""

    tokens: Tokens
    html: dict[str, Any]
    text: dict[str, Any]
    sections_html: list[dict[str, Any]]
    sections_text: list[dict[str, Any]]
    # Local pictures by where they are shown: None for every version, else a section.
    pictures: dict[int | None, dict[str, Picture]]


class Renderer:
    """Holds the Jinja environments and the inliner for one workspace.

    ``pictures`` says how the email reaches local pictures: "embed" (``cid:``
    parts of the message), "hosted" (links at web_url) or "archive" (the
    archive's own relative copies); default: ``[images] mode``. ``home`` gives
    a web copy its link back to the archive's index for its lists.
    """

    def __init__(
        self, config: Config, *, pictures: str | None = None, home: HomeLink | None = None
    ) -> None:
        self.config = config
        self.home = home
        self.mode = pictures or config.images_mode
        self.pictures = Pictures(config.resolve(config.build_dir) / ".pictures")
        self.inline = engine(config.inliner)
        loader = template_loader(config.templates_dir)
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
        shown: dict[int | None, dict[str, Picture]] = {}
        problems = Problems()
        where: int | None = None  # the section being prepared; None: every version

        def picture(src: str, key: str) -> tuple[str, int, int] | None:
            if not is_local(src):
                return None
            base = self.config.root if key == "logo" else issue.path.parent
            try:
                if not (base / src).resolve().is_relative_to(base.resolve()):
                    folder = "newsletter.toml's folder" if key == "logo" else "the issue's folder"
                    raise PictureError(f"the picture {src} is outside {folder}")
                found = self.pictures.get(base / src, src)
            except PictureError as exc:
                line, col = issue.positions.get(key, (None, None))
                problems.error(self._shown(issue.path), line, col, str(exc), _PICTURE_HINT)
                return None
            shown.setdefault(where, {})[found.src] = found
            width, height = found.shown
            return self._picture_url(issue, found), width, height

        def md(value: str | None) -> Markup | None:
            if not value:
                return None
            return Markup(markup.to_html(p(value), lambda src: picture(src, f"{md_key}!{src}")))

        def txt(value: str | None) -> str | None:
            return markup.to_text(p(value)) if value else None

        md_key = "intro"
        logo = None
        if self.config.logo:
            found = picture(self.config.logo, "logo")
            if found is not None:
                logo = {"src": found[0], "width": found[1], "height": found[2]}
        html = {
            "title": p(issue.title),
            "subtitle": p(issue.subtitle) if issue.subtitle else None,
            "preheader": p(issue.preheader) if issue.preheader else None,
            "greeting": Markup(markup.to_inline_html(p(issue.greeting)))
            if issue.greeting
            else None,
            "intro": md(issue.intro),
            "logo": logo,
        }
        md_key = "sign_off"
        html["sign_off"] = md(issue.sign_off)
        text = {
            "title": p(issue.title),
            "subtitle": p(issue.subtitle) if issue.subtitle else None,
            "greeting": markup.wrap(p(issue.greeting)) if issue.greeting else None,
            "intro": txt(issue.intro),
            "sign_off": txt(issue.sign_off),
        }
        sections_html = []
        sections_text = []
        for n, s in enumerate(issue.sections):
            where, md_key = n, f"sections[{n}].body"
            image = None
            if s.image:
                found = picture(s.image.src, f"sections[{n}].image.src")
                image = {
                    "src": found[0] if found else s.image.src,
                    "alt": p(s.image.alt),
                    "href": p(s.image.href) if s.image.href else None,
                    "width": found[1] if found else None,
                    "height": found[2] if found else None,
                }
            sections_html.append(
                {
                    "heading": p(s.heading),
                    "body": md(s.body),
                    "image": image,
                    "button": {"label": p(s.button.label), "url": p(s.button.url)}
                    if s.button
                    else None,
                }
            )
            sections_text.append(
                {
                    "heading": p(s.heading),
                    "picture": p(s.image.alt) if s.image else None,
                    "body": txt(s.body),
                    "button": {"label": p(s.button.label), "url": p(s.button.url)}
                    if s.button
                    else None,
                }
            )
        problems.raise_if_errors()
        return _Prepared(tokens, html, text, sections_html, sections_text, shown)

    def _shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.config.root).as_posix()
        except ValueError:
            return str(path)

    def _picture_url(self, issue: Issue, picture: Picture) -> str:
        if self.mode == "embed":
            return f"cid:{picture.cid(self.config.domain)}"
        if self.mode == "hosted" and self.config.web_url:
            return urljoin(_slash(self.config.web_url), published(issue, picture.src))
        # The archive's pages sit in the issue's folder, beside its pictures.
        return picture.src

    # -- per audience set ----------------------------------------------------
    def _variant(self, issue: Issue, prepared: _Prepared, audiences: frozenset[str]) -> Variant:
        audiences = frozenset() if EVERYONE in audiences else audiences
        chosen = [i for i, s in enumerate(issue.sections) if s.is_for(audiences)]
        context = self._context(issue, audiences, prepared.tokens, len(chosen))
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
        pictures = {
            src: pic for at in (None, *chosen) for src, pic in prepared.pictures.get(at, {}).items()
        }
        if pictures:
            html = _auto_height(html)
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
            pictures=tuple(pictures.values()),
            embedded=self.mode == "embed",
        )

    def _context(
        self, issue: Issue, audiences: frozenset[str], tokens: Tokens, sections: int
    ) -> dict[str, Any]:
        c = self.config
        # The page people unsubscribe on, else the mailbox; none on the archive's public
        # pages (it means nothing there) or for lists nobody may leave.
        links = [] if self.mode == "archive" else unsubscribe_links(c, audiences)
        link = tokens.protect(links[0]) if links else None
        return {
            "newsletter": {
                "name": c.name,
                "organisation": c.organisation,
                "address": c.address,
                "lang": c.lang,
                "unsubscribe": link,
            },
            "issue": {
                "date": long_date(issue),
                "iso_date": issue.date.isoformat(),
                "numbered": issue.numbered,
                "contents": shows_contents(issue, sections),
                "author": issue.author,
                "signed": signed(issue),
                "web_url": web_copy_url(c, issue, audiences),
                "home": dict(zip(("href", "label"), self.home(audiences), strict=True))
                if self.home
                else None,
            },
            "audiences": sorted(audiences) or [EVERYONE],
        }


# MJML gives a picture with a height a fixed CSS height; on a phone, where the width
# shrinks, that would stretch it. The height attribute stays (no jump while loading).
_IMG = re.compile(r"<img\b[^>]*>")
_FIXED_HEIGHT = re.compile(r"height:\d+px;")


def _auto_height(html: str) -> str:
    return _IMG.sub(lambda m: _FIXED_HEIGHT.sub("height:auto;", m[0]), html)


_PICTURE_HINT = (
    "check the file name and that the picture is in the newsletter folder, "
    "saved as PNG, JPEG, GIF or WebP"
)


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _template_problem(exc: jinja2.TemplateError, templates_dir: Path) -> ProblemsError:
    problems = Problems()
    if isinstance(exc, jinja2.TemplateNotFound):
        looks = ", ".join(template_names(templates_dir))
        problems.error(
            str(templates_dir),
            None,
            None,
            f"there is no template file called {exc.name}, in templates/ or shipped with "
            "newsletter-sender",
            f"check the name in 'template:' or in the look's extends line; the looks are: {looks}",
        )
        return ProblemsError(problems.items)
    name = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
    line = getattr(exc, "lineno", None)
    shown = Path(str(name))
    problems.error(
        str(shown if shown.is_file() else templates_dir / shown.name),
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
