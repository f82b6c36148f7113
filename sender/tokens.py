"""Each person's private token: in their unsubscribe links and their bounce address.

A token is an HMAC of the person's address key, their lists and the issue,
under a secret only the sender has (an environment variable, never in a
file here): it carries no address, cannot be guessed, and stands for one
person only. The ledger keeps what each token stands for, so the unsubscribe
page and the bounce reader can look it up. Lower-case base32, so it survives
mail systems that fold the local part of an address to lower case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

MIN_SECRET = 16  # characters: shorter secrets are refused
TOKEN = re.compile(r"[a-z2-7]{26}")


class SecretMissing(Exception):
    """The token secret is not set (or too short); the message says how to set it."""


def make(secret: bytes, email: str, lists: str, issue: str) -> str:
    """The token of ``email`` (an address key) on ``lists`` (an audience key) for ``issue``."""
    digest = hmac.new(secret, f"{email}\0{lists}\0{issue}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()


def secret(variable: str) -> bytes:
    """The secret from the environment variable named in the settings."""
    value = os.environ.get(variable, "")
    if len(value) < MIN_SECRET:
        raise SecretMissing(
            f"the environment variable {variable} must hold the secret that makes each "
            f"person's private unsubscribe and bounce links (at least {MIN_SECRET} characters). "
            'Make one once, e.g. python3 -c "import secrets; print(secrets.token_hex(32))", '
            "keep it somewhere safe, and set it the same way for every send: a new secret "
            "makes links already sent stop working."
        )
    return value.encode("utf-8")


def looks_like(text: str) -> bool:
    return TOKEN.fullmatch(text) is not None
