"""Audience sets and their written form: 'everyone', 'headteachers', 'headteachers+managers'.

A set of list names is what decides which sections a person gets; its key is
how it is written in file names, the ledger and on the command line. Written
and read here only, so the two can never disagree.
"""

from __future__ import annotations

EVERYONE = "everyone"


def audience_key(audiences: frozenset[str]) -> str:
    """'everyone', 'headteachers' or 'headteachers+managers': stable, file-name safe."""
    return "+".join(sorted(audiences)) if audiences else EVERYONE


def parse_key(key: str) -> frozenset[str]:
    """The set a key names; 'everyone' (alone or in a sum) is the empty set: every section."""
    parts = frozenset(p.strip() for p in key.split("+") if p.strip())
    return frozenset() if EVERYONE in parts else parts


def key_lists(key: str) -> tuple[str, ...]:
    """The list names in a key, in its (sorted) order; 'everyone' names no list."""
    return tuple(sorted(parse_key(key)))
