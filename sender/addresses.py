"""A list's addresses checked by email-validator's rules, the common case made cheap.

Reading 100,000 rows spent 81% of its time in email-validator, most of it on the
part after the @-sign, which is the same few domains again and again. So an
address of the common shape — before the @-sign a dot-atom of the ASCII
characters RFC 5322 allows (exactly email-validator's first test), after it
letters, digits, dots and hyphens — is taken apart here: the domain is put to
email-validator once (as the domain of a stand-in address) and its answer kept;
the part before the @-sign needs nothing more (email-validator keeps such a
part as it is, except the few mailbox names it lower-cases, which go to it).
Every other address, and every address at a domain email-validator refuses,
goes to email-validator itself, so each verdict and each message about a bad
address is its own; its answers are kept too, so the same address is never
checked twice. ``tests/test_addresses.py`` shows the two agree, on the
project's bad addresses and on addresses hypothesis makes up.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

# The mailbox names email-validator lower-cases (RFC 2142: postmaster, abuse, …);
# None: a version that keeps them elsewhere, so every address goes to it.
_LOWERED: frozenset[str] | None
try:
    from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

    _LOWERED = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
except ImportError:  # pragma: no cover
    _LOWERED = None

__all__ = ["Addresses", "EmailNotValidError", "check"]

_ATOM = r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+"
_COMMON = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@([a-zA-Z0-9.\-]+)")
_MAX = 254  # email-validator's limit on the whole address


def check(address: str) -> str:
    """email-validator's normalised ASCII form of ``address``, or its EmailNotValidError."""
    result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    # Without SMTPUTF8 the ASCII form always exists; the domain in IDNA form.
    return result.ascii_email or result.normalized


class Addresses:
    """Checks addresses as :func:`check` does, remembering domains and unusual addresses.

    One instance per reading of the lists: what it remembers lasts as long as it."""

    def __init__(self) -> None:
        self._domains: dict[str, str | None] = {}  # as written -> normalised; None: ask
        self._unusual: dict[str, str | EmailNotValidError] = {}
        self.asked = 0  # how many times email-validator was called

    def __call__(self, address: str) -> str:
        common = _COMMON.fullmatch(address) if _LOWERED else None
        if common is not None:
            local, written = common.groups()
            domain = self._domains.get(written, "")
            if domain == "":
                domain = self._domains[written] = self._domain(written)
            if domain is not None and local.lower() not in (_LOWERED or ()):
                normalised = f"{local}@{domain}"
                if len(address) <= _MAX and len(normalised) <= _MAX:
                    return normalised
        known = self._unusual.get(address)
        if known is None:
            self.asked += 1
            try:
                known = check(address)
            except EmailNotValidError as exc:
                known = exc
            self._unusual[address] = known
        if isinstance(known, EmailNotValidError):
            raise known
        return known

    def _domain(self, written: str) -> str | None:
        """The domain as email-validator normalises it, or None if it must see each
        address there itself: it refuses the domain, or the domain is internationalised
        (``xn--``), whose Unicode form may change the length it checks."""
        self.asked += 1
        try:
            result = validate_email(
                f"a@{written}", check_deliverability=False, allow_smtputf8=False
            )
        except EmailNotValidError:
            return None
        if "xn--" in result.ascii_domain or result.domain != result.ascii_domain:
            return None
        return str(result.ascii_domain)
