"""CSS inlining engines: css-inline by default, premailer on request.

Both run on HTML whose placeholders are still inert tokens (see
placeholders.Tokens), so neither can mangle them; premailer gets the safe
settings found safe for it (docs/design.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import css_inline

Inliner = Callable[[str, str], str]  # (html, extra_css) -> html


class InlinerMissing(Exception):
    pass


def css_inline_engine(html: str, extra_css: str) -> str:
    inliner = css_inline.CSSInliner(
        keep_style_tags=True,  # media queries (mobile, dark mode) must stay in <style>
        load_remote_stylesheets=False,
        extra_css=extra_css or None,
    )
    return inliner.inline(html)


def premailer_engine(html: str, extra_css: str) -> str:
    try:
        from premailer import Premailer
    except ImportError:
        raise InlinerMissing(
            "newsletter.toml asks for the 'premailer' inliner, but it is not installed. "
            "Install it with: pip install 'newsletter-sender[premailer]', "
            'or set [build] inliner = "css-inline".'
        ) from None
    result: str = Premailer(
        html,
        css_text=extra_css or None,
        allow_network=False,
        strip_important=False,  # mobile rules depend on !important
        keep_style_tags=True,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    # premailer drops a lowercase doctype; mail clients pick quirks mode without it.
    if not result.lstrip().lower().startswith("<!doctype"):
        result = "<!doctype html>" + result
    return result


ENGINES: dict[str, Inliner] = {"css-inline": css_inline_engine, "premailer": premailer_engine}


def engine(name: str) -> Inliner:
    return ENGINES[name]
