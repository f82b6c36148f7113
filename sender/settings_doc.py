"""The settings reference (docs/settings.md) and the starter newsletter.toml of
``newsletter init``, both written from the one declaration of each setting.

Regenerate the reference after changing a setting:

    .venv/bin/python -m sender.settings_doc            # writes docs/settings.md
    .venv/bin/python -m sender.settings_doc --check    # exit 1 if it is out of date

tests/test_settings_doc.py fails when the file is out of date.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterable, Mapping
from itertools import groupby
from pathlib import Path

from .config import Link, options
from .settings import Number, Option, Value

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"

# What each [section] is for: one line each, above its settings.
SECTIONS = {
    "newsletter": "Who the newsletter is from and what readers see in every issue.",
    "build": "How `newsletter build` makes each version's HTML.",
    "send": "How `newsletter send` delivers, and where it keeps its record.",
    "images": "How the pictures of an issue reach the reader.",
    "archive": "The web copies of sent issues (`newsletter archive`).",
    "unsubscribe": "Each reader's private unsubscribe link (see `newsletter serve`).",
    "smtp": 'The mail server that sends for real (`[send] transport = "smtp"`).',
    "dkim": "Signing every message with DKIM, for a mail server that does not sign.",
    "inbox": "The mailbox bounces and unsubscribe emails come back to (`newsletter inbox`).",
}

# Tables that are not one setting each, said in words.
TABLES = """\
## [lists.NAME]

A table for a list (recipients/NAME.csv) that needs a setting of its own.

### unsubscribe

`false` marks a list people cannot leave, such as briefings an employer must
send: its emails carry no unsubscribe link. Use it only for such messages.

- Type: true or false
- Default: `true`
- Example: `[lists.all-staff]` then `unsubscribe = false`

## [[smtp]]

Several relays, tried in this order: write one `[[smtp]]` table for each,
with the settings of `[smtp]` above, instead of one `[smtp]`. The first that
answers and lets the newsletter sign in takes the send; if it is lost
part-way, the next carries on. Each has its own `per_day`.
"""


def toml_value(value: Value) -> str:
    """A value as newsletter.toml writes it: "text" in quotes, true/false, numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


def allowed(option: Option) -> str | None:
    """The values a setting takes, in words, where its type does not say it all."""
    kind = option.kind
    if option.choices:
        return ", ".join(f"`{toml_value(choice)}`" for choice in option.choices)
    if isinstance(kind, Number) and kind.rule:
        return f"a {kind.type_name} {kind.rule}"
    if isinstance(kind, Link):
        return "an address starting with " + " or ".join(f"`{s}`" for s in kind.schemes)
    return None


def reference(declared: Iterable[Option] | None = None) -> str:
    """docs/settings.md: every setting, by section, with its type, default, allowed values,
    what it does and an example."""
    out = [
        "# Settings reference (`newsletter.toml`)",
        "",
        "Every setting of `newsletter.toml`: its type, its default (what applies when it",
        "is left out), the values it takes, what it does and an example. Generated from",
        "the settings' declarations in `sender/config.py` by",
        "`python -m sender.settings_doc`; do not edit it by hand.",
        "",
        "Secrets never go in this file: settings ending in `_env` name the environment",
        "variable that holds one. Paths are relative to the folder of `newsletter.toml`.",
        "",
    ]
    for section, group in groupby(declared or options(), key=lambda o: o.section):
        out += [f"## [{section}]", ""]
        if section in SECTIONS:
            out += [SECTIONS[section], ""]
        for option in group:
            default = "not set" if option.default is None else f"`{toml_value(option.default)}`"
            out += [f"### {option.key}", "", *textwrap.wrap(option.help, 79), ""]
            out.append(f"- Type: {option.type_name}")
            out.append(f"- Default: {default}")
            if (values := allowed(option)) is not None:
                out.append(f"- Allowed: {values}")
            out += [f"- Example: `{option.key} = {toml_value(option.example)}`", ""]
    return "\n".join(out) + "\n" + TABLES


def starter_toml(values: Mapping[tuple[str, str], Value], sections: Iterable[str]) -> str:
    """A newsletter.toml for ``newsletter init``: each of ``sections`` with every one of
    its settings described; those in ``values`` set, the others commented out with an
    example, to fill in when needed."""
    wanted = list(sections)
    others = [f"[{s}]" for s in dict.fromkeys(o.section for o in options()) if s not in wanted]
    intro = (
        "Settings for this newsletter folder. Above each setting, what it does; remove the "
        "'# ' in front of one to use it. Secrets never go in this file: settings ending in "
        f"_env name the environment variable that holds one. More settings ({', '.join(others)}"
        ", [lists.NAME], [[smtp]]): the settings reference, docs/settings.md in "
        "newsletter-sender."
    )
    out = [f"# {line}" for line in textwrap.wrap(intro, 78)]
    for section, group in groupby(options(), key=lambda o: o.section):
        if section not in wanted:
            continue
        out += ["", f"[{section}]"]
        for option in group:
            out += [f"# {line}" for line in textwrap.wrap(option.help, 78)]
            if (section, option.key) in values:
                out.append(f"{option.key} = {toml_value(values[section, option.key])}")
            else:
                out.append(f"# {option.key} = {toml_value(option.example)}")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    text = reference()
    if argv[1:] == ["--check"]:
        if REFERENCE.read_text(encoding="utf-8") == text:
            return 0
        print(f"{REFERENCE} is out of date: run python -m sender.settings_doc", file=sys.stderr)
        return 1
    REFERENCE.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
