"""Where the ledger is: a file, or a PostgreSQL database named by its address.

Kept apart from ``postgres.py`` so that reading a ``[send] ledger`` value, or
printing it, does not load the database ledger.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")


def is_database(location: object) -> bool:
    """Whether a ``[send] ledger`` value names a PostgreSQL database rather than a file."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def shown(url: str) -> str:
    """The address as it may be printed: any password in it replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
