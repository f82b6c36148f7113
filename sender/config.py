"""newsletter.toml -> Config, and finding the workspace the way git finds .git.

Every setting is declared once, as a field of SmtpConfig or Config (see
settings.py): section, key, kind of value, default, description, example.
``options()`` lists them in order, for checking and for the settings reference.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from .placeholders import PLACEHOLDER
from .problems import Problems
from .settings import (
    Choice,
    Fault,
    Flag,
    Location,
    Number,
    Option,
    Text,
    Value,
    build,
    declared,
    read,
    setting,
)

CONFIG_NAME = "newsletter.toml"
INLINERS = ("css-inline", "premailer")
TRANSPORTS = ("eml", "smtp")
IMAGE_MODES = ("embed", "hosted")
SECURITIES = ("starttls", "tls", "none")
INBOX_SECURITIES = ("tls", "starttls")
AUTHS = ("password", "microsoft", "google")
DKIM_ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
DATABASE_SCHEMES = ("postgresql://", "postgres://")  # [send] ledger in PostgreSQL

# What a mail header can carry; message.py builds the headers by the same rules.
# A domain name: dot-separated labels of ASCII letters, digits and inner hyphens.
DOMAIN_NAME = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
# An addr-spec in ASCII (no SMTPUTF8): atext and dots, '@', a domain name.
ASCII_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + DOMAIN_NAME.pattern)
# A URL in <…> of a header: printable ASCII but '<' and '>' (placeholders aside).
HEADER_URL = re.compile(r"[!-;=?-~]+")


class WorkspaceNotFound(Exception):
    pass


class MailAddress(Text):
    """``Name <user@example.org>`` (or the bare address) that mail can carry."""

    type_name = "mail address"

    def check(self, where: str, value: Any) -> Fault | None:
        if "\r" in value or "\n" in value:
            return Fault(
                f"{where} has a line break in it, which a mail header cannot carry",
                'write it on one line, such as "News <news@example.org>"',
            )
        _, address = parseaddr(value)
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            return Fault(
                f"{where} '{value}' is not a valid address: {exc}",
                'write it as "Name <name@example.org>"',
            )
        # Valid, so what ASCII_ADDRESS refuses is an address needing SMTPUTF8.
        if not ASCII_ADDRESS.fullmatch(address):
            return Fault(
                f"{where} '{value}' cannot be sent: mail servers only take "
                "plain-letter (ASCII) addresses here",
                'use the address your IT department gives you, such as "News <news@example.org>"',
            )
        return None


class DomainName(Text):
    type_name = "domain name"

    def __init__(self, needed_by: str = "the Message-ID and List-Id headers") -> None:
        self.needed_by = needed_by

    def check(self, where: str, value: Any) -> Fault | None:
        if DOMAIN_NAME.fullmatch(value):
            return None
        return Fault(
            f"{where} '{value}' is not a domain name, which {self.needed_by} need",
            "write just the name, such as news.example.org: letters, digits and hyphens, "
            "with dots between the parts (no spaces, https:// or /)",
        )


class Link(Text):
    """A URL starting with one of ``schemes``; with ``in_header``, one that can
    go into a header as ``<URL>`` (placeholders, filled in per person, aside)."""

    type_name = "link"

    def __init__(self, *schemes: str, hint: str, in_header: bool = False) -> None:
        self.schemes = schemes
        self.hint = hint
        self.in_header = in_header

    def check(self, where: str, value: Any) -> Fault | None:
        if not value:
            return None
        if not value.startswith(self.schemes):
            return Fault(
                f"{where} '{value}' must start with {' or '.join(self.schemes)}", self.hint
            )
        if self.in_header:
            # As MessageTemplate checks it: each placeholder stands for its escaped value.
            bare = PLACEHOLDER.sub("x", value)
            bad = dict.fromkeys(ch for ch in bare if not HEADER_URL.fullmatch(ch))
            if bad:
                return Fault(
                    f"{where} '{value}' cannot go into a mail header: it has "
                    f"{' and '.join(_describe(ch) for ch in bad)} in it",
                    "percent-encode it (a space as %20, < as %3C, > as %3E), or ask whoever "
                    "runs the page for the exact link",
                )
        return None


class LedgerLocation(Location):
    """A file (relative to newsletter.toml), or a PostgreSQL database's address
    (postgresql://user@host/database), kept as text; the password never in it."""

    type_name = "path or postgresql:// address"

    def check(self, where: str, value: Any) -> Fault | None:
        if not value.startswith(DATABASE_SCHEMES):
            return None
        try:
            parts = urlsplit(value)
            password, _port = parts.password, parts.port
        except ValueError as exc:
            return Fault(f"{where} is not a database address that can be read: {exc}")
        if password is not None:
            return Fault(
                f"{where} has a password in it",
                "take the password out of the address (postgresql://user@host/database) and "
                "set the environment variable named by [send] ledger_password_env to it",
            )
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            return Fault(
                f"{where} names no database",
                "end the address with the database's name: postgresql://user@host/newsletter",
            )
        return None

    def convert(self, value: Any, base: Path) -> Any:
        return value if value.startswith(DATABASE_SCHEMES) else super().convert(value, base)

    def toml(self, value: Any) -> Value:
        return value if isinstance(value, str) else super().toml(value)


def _describe(ch: str) -> str:
    if ch == " ":
        return "a space"
    return f"'{ch}'" if ch.isprintable() else f"the invisible character U+{ord(ch):04X}"


@dataclass(frozen=True)
class SmtpConfig:
    host: str = setting(
        "smtp",
        Text(),
        "localhost",
        help="The mail server that sends the newsletter (your IT department or mail provider "
        "gives its name).",
        example="smtp.riverside.example.org",
    )
    port: int = setting(
        "smtp",
        Number(int, at_least=1, at_most=65535),
        587,
        help="The mail server's port: usually 587 with starttls, 465 with tls.",
        example=587,
    )
    security: str = setting(
        "smtp",
        Choice(SECURITIES),
        "starttls",
        help="How the connection is encrypted: starttls (port 587), tls (port 465), or none "
        "(only for a server on this computer).",
        example="starttls",
    )
    username: str | None = setting(
        "smtp",
        Text(),
        None,
        help="The account to log in as; leave it out if the server needs no login.",
        example="news@riverside.example.org",
    )
    password_env: str = setting(
        "smtp",
        Text(),
        "NEWSLETTER_SMTP_PASSWORD",
        help="The environment variable that holds the password (never put the password "
        "in this file).",
        example="NEWSLETTER_SMTP_PASSWORD",
    )
    auth: str = setting(
        "smtp",
        Choice(AUTHS),
        "password",
        help="How to log in: password (username and password_env), microsoft (Microsoft 365: "
        "an app with SMTP.SendAsApp) or google (Google Workspace: a service account).",
        example="microsoft",
    )
    tenant: str | None = setting(
        "smtp",
        Text(),
        None,
        help="Microsoft 365 only: your organisation's Directory (tenant) ID, or its domain.",
        example="8f1d2c3b-0a4e-4c5d-9e6f-7a8b9c0d1e2f",
    )
    client_id: str | None = setting(
        "smtp",
        Text(),
        None,
        help="Microsoft 365 only: the Application (client) ID of the app registered in Entra ID.",
        example="0b7e4c52-3f1a-4d8e-a9b0-6c2d1e3f4a5b",
    )
    client_secret_env: str = setting(
        "smtp",
        Text(),
        "NEWSLETTER_SMTP_CLIENT_SECRET",
        help="Microsoft 365 only: the environment variable that holds the app's client secret "
        "(never put the secret in this file).",
        example="NEWSLETTER_SMTP_CLIENT_SECRET",
    )
    certificate_env: str = setting(
        "smtp",
        Text(),
        "NEWSLETTER_SMTP_CERTIFICATE",
        help="Microsoft 365 only: the environment variable that holds the path of a PEM file "
        "with the app's certificate and private key, used instead of a client secret when set.",
        example="NEWSLETTER_SMTP_CERTIFICATE",
    )
    key_file_env: str = setting(
        "smtp",
        Text(),
        "NEWSLETTER_GOOGLE_KEY_FILE",
        help="Google only: the environment variable that holds the path of the service "
        "account's JSON key file (keep the file outside this folder).",
        example="NEWSLETTER_GOOGLE_KEY_FILE",
    )
    allow_plain_auth: bool = setting(
        "smtp",
        Flag(),
        False,
        help='true lets the password cross the network unencrypted (security = "none" with '
        "a username) to a server that is not on this computer; only for a link you trust.",
        example=False,
    )
    ca_file: Path | None = setting(  # noqa: RUF009
        "smtp",
        Location(in_workspace=True),
        None,
        help="A certificate file (PEM) to trust, for a server with an in-house certificate; "
        "relative to newsletter.toml.",
        example="certs/council-ca.pem",
    )
    connections: int = setting(
        "smtp",
        Number(int),
        2,
        help="How many connections to the mail server send at the same time.",
        example=2,
    )
    rate: float = setting(
        "smtp",
        Number(float),
        10.0,
        help="At most this many messages a second (0: no limit).",
        example=10,
    )
    per_minute: int | None = setting(
        "smtp",
        Number(int),
        None,
        help="At most this many messages in any minute, if your provider sets a limit "
        "(Microsoft 365: 30).",
        example=30,
    )
    per_hour: int | None = setting(
        "smtp",
        Number(int),
        None,
        help="At most this many messages in any hour, if your provider sets a limit.",
        example=1000,
    )
    per_day: int | None = setting(
        "smtp",
        Number(int),
        None,
        help="At most this many messages in any 24 hours through this account, counted in the "
        "ledger across sends and issues (Microsoft 365: 10000 recipients a day).",
        example=10000,
    )
    tries: int = setting(
        "smtp",
        Number(int),
        3,
        help="How many times to try a message the server turns away for the moment.",
        example=3,
    )
    timeout: float = setting(
        "smtp",
        Number(float, above=0),
        30.0,
        help="Seconds the mail server has to answer each command, and to connect, greet and "
        "log in, before we give up.",
        example=30,
    )
    data_timeout: float = setting(
        "smtp",
        Number(float, above=0),
        600.0,
        help="Seconds to wait for the mail server's answer once it has a whole message; "
        "with no answer the message may have arrived, so it is not sent again.",
        example=600,
    )

    @property
    def account(self) -> str:
        """The relay account, as the ledger records which relay took a message."""
        where = f"{self.host}:{self.port}"
        return f"{self.username} at {where}" if self.username else where


@dataclass(frozen=True)
class DkimConfig:
    domain: str | None = setting(
        "dkim",
        DomainName("DKIM signatures"),
        None,
        help="Sign every message with DKIM for this domain (the d= of the signature); leave it "
        "out when your mail server signs for you.",
        example="riverside.example.org",
    )
    selector: str = setting(
        "dkim",
        Text(),
        "newsletter",
        help="The DKIM selector: the public key is published at SELECTOR._domainkey.DOMAIN "
        "(newsletter dns prints the record).",
        example="news2026",
    )
    key_env: str = setting(
        "dkim",
        Text(),
        "NEWSLETTER_DKIM_KEY",
        help="The environment variable that holds the private key (PEM); used when it is set.",
        example="NEWSLETTER_DKIM_KEY",
    )
    key_file: Path | None = setting(  # noqa: RUF009
        "dkim",
        Location(in_workspace=True),
        None,
        help="Or a file holding the private key (PEM), kept outside any shared folder; "
        "relative to newsletter.toml.",
        example="/etc/newsletter/dkim-private.pem",
    )
    algorithm: str = setting(
        "dkim",
        Choice(DKIM_ALGORITHMS),
        "rsa-sha256",
        help="rsa-sha256 (an RSA key, 2048 bits) or ed25519-sha256 (an Ed25519 key; not every "
        "receiver checks it yet, so publish an RSA one too).",
        example="rsa-sha256",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.domain)


@dataclass(frozen=True)
class InboxConfig:
    """[inbox]: the mailbox bounces and unsubscribe emails come back to (newsletter inbox)."""

    host: str | None = setting(
        "inbox",
        Text(),
        None,
        help="The IMAP server of the mailbox that bounces and unsubscribe emails come back "
        "to (the mailbox of [send] bounce_address).",
        example="imap.riverside.example.org",
    )
    port: int | None = setting(
        "inbox",
        Number(int, at_least=1, at_most=65535),
        None,
        help="The IMAP server's port; leave it out for 993 with tls, 143 with starttls.",
        example=993,
    )
    security: str = setting(
        "inbox",
        Choice(INBOX_SECURITIES),
        "tls",
        help="How the connection is encrypted: tls (port 993) or starttls (port 143); the "
        "server's certificate is always checked.",
        example="tls",
    )
    username: str | None = setting(
        "inbox",
        Text(),
        None,
        help="The account to log in to the mailbox as.",
        example="bounces@riverside.example.org",
    )
    password_env: str = setting(
        "inbox",
        Text(),
        "NEWSLETTER_INBOX_PASSWORD",
        help="The environment variable that holds the mailbox's password (never put the "
        "password in this file).",
        example="NEWSLETTER_INBOX_PASSWORD",
    )
    folder: str = setting(
        "inbox",
        Text(),
        "INBOX",
        help="The folder of the mailbox to read.",
        example="INBOX",
    )
    path: Path | None = setting(  # noqa: RUF009
        "inbox",
        Location(),
        None,
        help="Or a mailbox on this computer instead of IMAP: an mbox file or a Maildir "
        "folder, relative to newsletter.toml.",
        example="/var/mail/bounces",
    )
    ca_file: Path | None = setting(  # noqa: RUF009
        "inbox",
        Location(in_workspace=True),
        None,
        help="A certificate file (PEM) to trust, for an IMAP server with an in-house "
        "certificate; relative to newsletter.toml.",
        example="certs/council-ca.pem",
    )

    @property
    def imap_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


@dataclass(frozen=True)
class Config:
    root: Path
    name: str = setting(
        "newsletter",
        Text(),
        "Newsletter",
        help="The newsletter's name, as readers see it (mail programs show it as the list name).",
        example="Schools and Learning News",
    )
    organisation: str = setting(
        "newsletter",
        Text(),
        "Our organisation",
        help="Who publishes the newsletter, for the footer of each issue.",
        example="Riverside City Council",
    )
    address: str | None = setting(
        "newsletter",
        Text(),
        None,
        help="The organisation's postal address, for the footer of each issue.",
        example="Council House, 1 Civic Square, Riverside RV1 1AA",
    )
    lang: str = setting(
        "newsletter",
        Text(),
        "en-GB",
        help="The language the issues are written in, as a language tag.",
        example="en-GB",
    )
    sender: str = setting(
        "newsletter",
        MailAddress(),
        "Newsletter <newsletter@example.org>",
        key="from",
        help="Who the newsletter comes from: a name and an address your mail server lets "
        "you send from.",
        example="Riverside Schools and Learning <news@riverside.example.org>",
    )
    reply_to: str | None = setting(
        "newsletter",
        MailAddress(),
        None,
        help="Where replies go, if not to the from address.",
        example="Communications Team <comms@riverside.example.org>",
    )
    domain: str = setting(
        "newsletter",
        DomainName(),
        "example.org",
        help="Your domain name, for the Message-ID and List-Id headers.",
        example="news.riverside.example.org",
    )
    web_url: str | None = setting(
        "newsletter",
        Link(
            "https://",
            "http://",
            hint="give the address where the archive folder is published, such as "
            "https://news.example.org/",
        ),
        None,
        help='Where the archive folder is published; gives each issue its "view in browser" link.',
        example="https://news.riverside.example.org/",
    )
    logo: str | None = setting(
        "newsletter",
        Text(),
        None,
        help="A picture file shown at the top of every issue (its alt text is the name), "
        "relative to newsletter.toml; sent like any picture (see [images] mode).",
        example="images/logo.png",
    )
    unsubscribe: str | None = setting(
        "newsletter",
        Link(
            "https://",
            "mailto:",
            hint="give the web page where people unsubscribe (https://…) or the address "
            "that takes unsubscribe requests (mailto:unsubscribe@example.org)",
            in_header=True,
        ),
        None,
        help="Where readers unsubscribe: a web page (https://) or an address (mailto:); "
        "may hold placeholders such as {{ email }}.",
        example="mailto:unsubscribe@riverside.example.org?subject=unsubscribe",
    )
    inliner: str = setting(
        "build",
        Choice(INLINERS),
        "css-inline",
        help="What copies the styles into the HTML (premailer: pip install "
        "'newsletter-sender[premailer]').",
        example="css-inline",
    )
    build_dir: Path = setting(  # noqa: RUF009
        "build",
        Location(),
        Path("build"),
        key="out",
        help="The folder built issues go to, relative to newsletter.toml.",
        example="build",
    )
    transport: str = setting(
        "send",
        Choice(TRANSPORTS),
        "eml",
        help="eml writes each message to the outbox folder to look at; smtp sends for real.",
        example="eml",
    )
    outbox: Path = setting(  # noqa: RUF009
        "send",
        Location(),
        Path("outbox"),
        help="The folder eml writes messages to, relative to newsletter.toml.",
        example="outbox",
    )
    outbox_is_delivery: bool = setting(
        "send",
        Flag(),
        False,
        help="true when saving to the outbox is how you deliver (you send the .eml files on "
        "yourself); false treats the outbox as a rehearsal that never stops a real send.",
        example=False,
    )
    ledger: Path | str = setting(  # noqa: RUF009
        "send",
        LedgerLocation(),
        Path("ledger.sqlite"),
        help="What records who has been sent what, so a stopped send resumes without sending "
        "twice: a file, or a PostgreSQL database shared by a team and by several senders "
        "(postgresql://user@host/database, ?sslmode=verify-full for TLS).",
        example="ledger.sqlite",
    )
    ledger_password_env: str = setting(
        "send",
        Text(),
        "NEWSLETTER_LEDGER_PASSWORD",
        help="The environment variable holding the PostgreSQL ledger's password (never in "
        "this file).",
        example="NEWSLETTER_LEDGER_PASSWORD",
    )
    bounce_address: str | None = setting(
        "send",
        MailAddress(),
        None,
        help="The mailbox bounces come back to: each person's messages carry their own "
        "bounces+TOKEN@ address there, so 'newsletter inbox' knows whose bounce it is.",
        example="bounces@riverside.example.org",
    )
    images_mode: str = setting(
        "images",
        Choice(IMAGE_MODES),
        "embed",
        key="mode",
        help="embed: pictures travel inside each email (nothing to upload); hosted: the "
        "email links them at web_url, where you publish them before sending.",
        example="embed",
    )
    archive: Path = setting(  # noqa: RUF009
        "archive",
        Location(),
        Path("archive"),
        key="folder",
        help="The folder the web copies of issues go to, to publish at web_url.",
        example="archive",
    )
    unsubscribe_url: str | None = setting(
        "unsubscribe",
        Link("https://", hint="give the address 'newsletter serve' answers at, ending in /u/"),
        None,
        key="url",
        help="The unsubscribe page ('newsletter serve') the emails link to; each person's "
        "private token is added after it (one click, RFC 8058).",
        example="https://news.riverside.example.org/u/",
    )
    unsubscribe_mailto: str | None = setting(
        "unsubscribe",
        MailAddress(),
        None,
        key="mailto",
        help="An address that takes unsubscribe emails; each person's is "
        "unsubscribe+TOKEN@ that address.",
        example="unsubscribe@riverside.example.org",
    )
    token_secret_env: str = setting(
        "unsubscribe",
        Text(),
        "NEWSLETTER_TOKEN_SECRET",
        key="secret_env",
        help="The environment variable holding the secret that makes each person's private "
        "unsubscribe and bounce token (never in this file).",
        example="NEWSLETTER_TOKEN_SECRET",
    )
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    dkim: DkimConfig = field(default_factory=DkimConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    # [[smtp]]: every relay, in the order they are tried ([smtp] is the first).
    smtp_relays: tuple[SmtpConfig, ...] = ()
    # [lists.NAME] unsubscribe = false: lists an employer must send to (no unsubscribe).
    mandatory_lists: frozenset[str] = frozenset()

    @property
    def relays(self) -> tuple[SmtpConfig, ...]:
        """The relays to try in order: those of [[smtp]], or the one [smtp]."""
        return self.smtp_relays or (self.smtp,)

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


def options() -> Iterator[Option]:
    """Every setting, in the order of the reference: [newsletter], [build],
    [send], [archive], [smtp], [dkim]; each with section, key, type_name, default,
    choices, help and example."""
    return declared(Config)


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

    # [[smtp]]: several relays, each table read and checked as an [smtp] section.
    tables = data.pop("smtp") if isinstance(data.get("smtp"), list) else None
    mandatory = _mandatory_lists(data.pop("lists", {}), path, problems)
    given = read(data, path, problems, options())
    relays = [read({"smtp": t}, path, problems, _smtp_options()) for t in tables or ()]
    problems.raise_if_errors()
    config = build(Config, given, base=root, root=root, mandatory_lists=mandatory)
    if not relays:
        return config
    smtps = tuple(build(SmtpConfig, r, base=root) for r in relays)
    return replace(config, smtp=smtps[0], smtp_relays=smtps)


def _mandatory_lists(tables: Any, path: Path, problems: Problems) -> frozenset[str]:
    """[lists.NAME] tables: ``unsubscribe = false`` marks a list people cannot leave."""
    if not isinstance(tables, dict):
        problems.error(path, None, None, "[lists] must hold one [lists.NAME] table per list")
        return frozenset()
    mandatory = set()
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.error(
                path, None, None, f"write [lists.{name}] on its own line, then its settings"
            )
            continue
        for key, value in table.items():
            if key != "unsubscribe":
                problems.error(
                    path,
                    None,
                    None,
                    f"unknown setting '{key}' in [lists.{name}]",
                    "the one setting there is: unsubscribe = true or false",
                )
            elif not isinstance(value, bool):
                problems.error(
                    path, None, None, f"[lists.{name}] unsubscribe must be true or false"
                )
            elif not value:
                mandatory.add(name)
    return frozenset(mandatory)


def _smtp_options() -> list[Option]:
    return [o for o in options() if o.section == "smtp"]


# Filled in per person by the send with their private token (see sender/tokens.py);
# anything that shows a message without one (build, preview, a test) shows the default.
TOKEN_PLACEHOLDER = '{{ unsubscribe_token | default("your-private-link") }}'


def unsubscribe_links(config: Config, audiences: frozenset[str]) -> list[str]:
    """The unsubscribe addresses of a version sent to these lists, best first, each with
    the person's token as a placeholder; none when every list is one people cannot leave.

    ``audiences`` empty (every section: build, the archive) counts as any list."""
    if audiences and audiences <= config.mandatory_lists:
        return []
    links = []
    if config.unsubscribe_url:
        links.append(config.unsubscribe_url + TOKEN_PLACEHOLDER)
    if config.unsubscribe_mailto:
        _, address = parseaddr(config.unsubscribe_mailto)
        local, _, domain = address.partition("@")
        links.append(f"mailto:{local}+{TOKEN_PLACEHOLDER}@{domain}")
    if not links and config.unsubscribe:
        links.append(config.unsubscribe)
    return links


def needs_tokens(config: Config) -> bool:
    """Whether a send makes each person's private token (and needs the secret)."""
    return bool(config.unsubscribe_url or config.unsubscribe_mailto or config.bounce_address)
