"""Why a connection to the mail server failed, in words a comms officer can act on."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl

from ...config import SmtpConfig

__all__ = ["Failure", "Overdue", "address", "explain", "is_throttle", "reply_text"]

_CERT_UNTRUSTED = {2, 18, 19, 20, 21, 27}  # OpenSSL verify codes: unknown issuer, self-signed…
_CERT_WRONG_NAME = {62, 64}  # hostname / IP address mismatch


class Failure(Exception):
    """Opening a connection failed. ``permanent``: trying again cannot help;
    ``throttled``: the server asked us to slow down (see ``is_throttle``)."""

    def __init__(self, message: str, *, permanent: bool = False, throttled: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.throttled = throttled


# Exchange Online: 432 4.3.2 (too many connections or messages at once), 451 4.7.500
# "Server busy"; others: "throttled", "rate limit", "try again later … busy".
_THROTTLE_CODES = {421, 432, 451}
_THROTTLE_WORDS = re.compile(r"\b4\.3\.2\b|\b4\.7\.\d+\b|throttl|busy|rate limit|too many", re.I)


def is_throttle(code: int | None, text: str) -> bool:
    """Whether a reply asks us to slow down (a 421, 432 or 451 saying 4.3.2, 4.7.x,
    "throttled" or "busy"), rather than refusing this one message."""
    return code in _THROTTLE_CODES and bool(_THROTTLE_WORDS.search(text))


class Overdue(TimeoutError):
    """A reply did not come whole before its deadline. ``heard``: the start of
    what the server did send of it (empty: nothing at all)."""

    def __init__(self, heard: bytes) -> None:
        super().__init__("timed out")
        self.heard = heard


def reply_text(msg: bytes | str) -> str:
    """A server's reply (several lines, perhaps) as one line to quote."""
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(msg.split("\n")).strip()


def address(config: SmtpConfig) -> str:
    """``host:port``, as the messages name the server."""
    return f"{config.host}:{config.port}"


def explain(exc: BaseException, config: SmtpConfig) -> Failure:
    """What went wrong opening a connection, in words a comms officer can act on."""
    c = config
    where = address(c)
    if isinstance(exc, socket.gaierror):
        return Failure(
            f"cannot find the mail server '{c.host}' ({exc.strerror}); check [smtp] host "
            "in newsletter.toml, and that this computer is online"
        )
    if isinstance(exc, ConnectionRefusedError):
        return Failure(
            f"the mail server {c.host} refused the connection on port {c.port}: nothing "
            "is listening there. Check [smtp] host and port in newsletter.toml "
            "(usually 587 for STARTTLS, 465 for TLS)"
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
        exc.__context__, TimeoutError
    ):
        exc = exc.__context__  # smtplib's word for a reply that never came
    if isinstance(exc, Overdue) and exc.heard:
        said = reply_text(exc.heard.split(b"\n")[0])
        return Failure(
            f"the mail server {where} is not answering properly: it began a reply "
            f"('{said}' …) but did not finish it within {c.timeout:g} s. Check [smtp] host "
            "and port are those of your mail server (587 for STARTTLS, 465 for TLS); if "
            "they are, tell whoever runs the server, or raise [smtp] timeout if it is "
            "just slow"
        )
    if isinstance(exc, TimeoutError):
        hint = ""
        if c.security == "starttls" and c.port == 465:
            hint = ' Port 465 expects security = "tls".'
        return Failure(
            f"no answer from the mail server {where} within {c.timeout:g} s. Check "
            f"[smtp] host and port, and that this network lets mail out on port "
            f"{c.port}.{hint}"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or str(exc)
        if exc.verify_code in _CERT_WRONG_NAME:
            return Failure(
                f"the mail server's certificate is not for the name '{c.host}' ({why}). "
                "Set [smtp] host to the name the certificate is for (ask your IT team "
                "which name to use)",
                permanent=True,
            )
        if exc.verify_code in _CERT_UNTRUSTED:
            named = (
                f" The CA file {c.ca_file} does not vouch for it: check it is the right one."
                if c.ca_file
                else " If this is your organisation's internal relay, name its CA "
                "certificate file in [smtp] ca_file in newsletter.toml."
            )
            return Failure(
                f"the mail server {where} sent a certificate we do not trust ({why}).{named}",
                permanent=True,
            )
        return Failure(
            f"the mail server {where} sent a certificate we cannot accept ({why})",
            permanent=True,
        )
    if isinstance(exc, ssl.SSLError):
        hint = (
            " The server may not use TLS from the start on this port: for port 587 or 25 "
            'set security = "starttls".'
            if c.security == "tls"
            else ""
        )
        return Failure(
            f"could not set up TLS with the mail server {where} ({exc.reason or exc}).{hint}",
            permanent=True,
        )
    if isinstance(exc, smtplib.SMTPHeloError):
        return Failure(
            f"the mail server {where} did not accept our greeting (EHLO): "
            f"{exc.smtp_code} {reply_text(exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        # STARTTLS refused, or a reply we did not expect while setting up.
        return Failure(
            f"the mail server {where} answered {exc.smtp_code} {reply_text(exc.smtp_error)} "
            "while we were setting up the connection",
            permanent=exc.smtp_code >= 500,
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        hint = ""
        if c.security != "tls":
            hint = (
                f" If port {c.port} expects TLS from the start (465 usually does), "
                'set security = "tls".'
            )
        return Failure(
            f"the mail server {where} closed the connection while we were setting up "
            f"({exc or 'no reason given'}).{hint}"
        )
    if isinstance(exc, OSError):
        return Failure(
            f"cannot reach the mail server {where}: {exc.strerror or exc}. Check [smtp] "
            "host and port, and this computer's network connection"
        )
    return Failure(f"the connection to the mail server {where} failed: {exc}")
