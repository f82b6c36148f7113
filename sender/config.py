"""newsletter.toml -> Config, and finding the workspace the way git finds .git."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

from .problems import Problems, did_you_mean

CONFIG_NAME = "newsletter.toml"
INLINERS = ("css-inline", "premailer")
TRANSPORTS = ("eml", "smtp")
SECURITIES = ("starttls", "tls", "none")


class WorkspaceNotFound(Exception):
    pass


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password_env: str = "NEWSLETTER_SMTP_PASSWORD"
    ca_file: Path | None = None
    connections: int = 2
    rate: float = 10.0
    per_minute: int | None = None
    per_hour: int | None = None
    tries: int = 3
    timeout: float = 30.0


@dataclass(frozen=True)
class Config:
    root: Path
    name: str = "Newsletter"
    organisation: str = "Our organisation"
    address: str | None = None
    lang: str = "en-GB"
    sender: str = "Newsletter <newsletter@example.org>"
    reply_to: str | None = None
    domain: str = "example.org"
    web_url: str | None = None
    unsubscribe: str | None = None
    inliner: str = "css-inline"
    build_dir: Path = Path("build")
    transport: str = "eml"
    outbox: Path = Path("outbox")
    ledger: Path = Path("ledger.sqlite")
    archive: Path = Path("archive")
    smtp: SmtpConfig = field(default_factory=SmtpConfig)

    @property
    def path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def newsletters_dir(self) -> Path:
        return self.root / "newsletters"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def recipients_dir(self) -> Path:
        return self.root / "recipients"

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path


def find_workspace(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding newsletter.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceNotFound(
        f"No {CONFIG_NAME} found in {here} or any folder above it. "
        f"Run the command inside your newsletter folder, or pass --workspace DIR."
    )


# Each section's keys and the type each must have; anything else is a typo.
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "newsletter": {
        "name": str,
        "organisation": str,
        "address": str,
        "lang": str,
        "from": str,
        "reply_to": str,
        "domain": str,
        "web_url": str,
        "unsubscribe": str,
    },
    "build": {"inliner": str, "out": str},
    "send": {"transport": str, "outbox": str, "ledger": str},
    "archive": {"folder": str},
    "smtp": {
        "host": str,
        "port": int,
        "security": str,
        "username": str,
        "password_env": str,
        "ca_file": str,
        "connections": int,
        "rate": (int, float),
        "per_minute": int,
        "per_hour": int,
        "tries": int,
        "timeout": (int, float),
    },
}


_TOML_AT = re.compile(r" \(at line (\d+), column (\d+)\)")


def load_config(root: Path) -> Config:
    """Read and validate ``root/newsletter.toml``; all problems raised at once.

    A folder without the file is not a workspace: WorkspaceNotFound (a usage
    error, as when no folder above the current one has it)."""
    path = root / CONFIG_NAME
    problems = Problems()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise WorkspaceNotFound(
            f"No {CONFIG_NAME} in {root}: it is not a newsletter folder. "
            f"Pass --workspace the folder that holds {CONFIG_NAME}."
        ) from None
    except UnicodeDecodeError:
        problems.error(path, None, None, "is not UTF-8 text", "save it as UTF-8")
        problems.raise_if_errors()
        raise AssertionError("unreachable") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line N, column M)" in the message: make it file:line:col.
        where = _TOML_AT.search(str(exc))
        line, col = (int(where[1]), int(where[2])) if where else (None, None)
        message = _TOML_AT.sub("", str(exc)) if where else str(exc)
        problems.error(path, line, col, f"is not valid TOML: {message}")
        problems.raise_if_errors()
        raise AssertionError("unreachable") from None

    values: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        if not isinstance(body, dict):
            # "host = …" above every [section] line: say where it belongs.
            homes = [name for name, keys in _SCHEMA.items() if section in keys]
            problems.error(
                path,
                None,
                None,
                f"the setting '{section}' is not under any [section]",
                f"move it below the [{homes[0]}] line"
                if homes
                else f"settings belong under a section: {', '.join(f'[{s}]' for s in _SCHEMA)}",
            )
            continue
        if section not in _SCHEMA:
            problems.error(
                path,
                None,
                None,
                f"unknown section [{section}]",
                did_you_mean(section, _SCHEMA) or f"sections are: {', '.join(_SCHEMA)}",
            )
            continue
        values[section] = {}
        for key, value in body.items():
            expected = _SCHEMA[section].get(key)
            if expected is None:
                problems.error(
                    path,
                    None,
                    None,
                    f"unknown setting '{key}' in [{section}]",
                    did_you_mean(key, _SCHEMA[section])
                    or f"settings there are: {', '.join(_SCHEMA[section])}",
                )
            elif isinstance(value, bool) or not isinstance(value, expected):
                kind = "a number" if expected in (int, (int, float)) else "text in quotes"
                problems.error(path, None, None, f"[{section}] {key} must be {kind}")
            else:
                values[section][key] = value

    news = values.get("newsletter", {})
    build = values.get("build", {})
    send = values.get("send", {})
    smtp = values.get("smtp", {})

    for key in ("from", "reply_to"):
        if key in news:
            _check_address(problems, path, f"[newsletter] {key}", news[key])
    if build.get("inliner", "css-inline") not in INLINERS:
        problems.error(
            path,
            None,
            None,
            f"[build] inliner '{build['inliner']}' is not one we know",
            f"use one of: {', '.join(INLINERS)}",
        )
    if send.get("transport", "eml") not in TRANSPORTS:
        problems.error(
            path,
            None,
            None,
            f"[send] transport '{send['transport']}' is not one we know",
            f"use one of: {', '.join(TRANSPORTS)}",
        )
    if smtp.get("security", "starttls") not in SECURITIES:
        problems.error(
            path,
            None,
            None,
            f"[smtp] security '{smtp['security']}' is not one we know",
            f"use one of: {', '.join(SECURITIES)}",
        )
    for key in ("web_url", "unsubscribe"):
        url = news.get(key)
        if url and not url.startswith(("https://", "http://", "mailto:")):
            problems.error(
                path, None, None, f"[newsletter] {key} must start with https:// or mailto:"
            )
    problems.raise_if_errors()

    smtp_config = SmtpConfig(
        **{k: v for k, v in smtp.items() if k not in ("ca_file", "rate", "timeout")},
        ca_file=root / smtp["ca_file"] if "ca_file" in smtp else None,
        rate=float(smtp.get("rate", 10.0)),
        timeout=float(smtp.get("timeout", 30.0)),
    )
    return Config(
        root=root,
        name=news.get("name", Config.name),
        organisation=news.get("organisation", Config.organisation),
        address=news.get("address"),
        lang=news.get("lang", Config.lang),
        sender=news.get("from", Config.sender),
        reply_to=news.get("reply_to"),
        domain=news.get("domain", Config.domain),
        web_url=news.get("web_url"),
        unsubscribe=news.get("unsubscribe"),
        inliner=build.get("inliner", Config.inliner),
        build_dir=Path(build.get("out", "build")),
        transport=send.get("transport", Config.transport),
        outbox=Path(send.get("outbox", "outbox")),
        ledger=Path(send.get("ledger", "ledger.sqlite")),
        archive=Path(values.get("archive", {}).get("folder", "archive")),
        smtp=smtp_config,
    )


def _check_address(problems: Problems, path: Path, what: str, value: str) -> None:
    from email.utils import parseaddr

    _, addr = parseaddr(value)
    try:
        validate_email(addr, check_deliverability=False)
    except EmailNotValidError as exc:
        problems.error(
            path,
            None,
            None,
            f"{what} '{value}' is not a valid address: {exc}",
            'write it as "Name <name@example.org>"',
        )
