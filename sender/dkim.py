"""DKIM: each person's message signed once, on its final bytes, and the DNS records to publish.

``[dkim] domain`` turns signing on. The private key comes from the
environment (``key_env``, PEM text) or a file outside the folder
(``key_file``); it is read once per send, checked with a test signature
before anyone is sent to, and never printed or logged. The signature covers
the headers that matter (``SIGNED``) and never uses ``l=`` (a body length
would let anyone append to the message).

Canonicalisation is relaxed for the headers (relays refold them) and simple
for the body: the bodies made here are quoted-printable or base64 with CRLF
line ends and no trailing white space, which relaxed would not change, and
dkimpy's relaxed body pass (regular expressions over every line, in Python)
cost three times the rest of the signature on a 64 KB message
(``benchmarks/bench_dkim.py``).

dkimpy signs (``pip install 'newsletter-sender[dkim]'``; Ed25519 needs pynacl,
which that installs too). Signing is optional because Microsoft 365 and Google
Workspace sign at the relay once the domain is set up there; a relay that does
not needs it here.
"""

from __future__ import annotations

import base64
import importlib
import os
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import Config, DkimConfig, SmtpConfig
from .problems import Problem

__all__ = ["SIGNED", "DkimError", "Record", "Signer", "alignment", "dns_records", "signer_for"]

# The headers signed, in this order: those a reader sees or a program acts on.
SIGNED = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


class DkimError(Exception):
    """Signing cannot work (no key, a wrong key, dkimpy missing): said with the way out."""


def _dkimpy() -> ModuleType:
    try:
        return importlib.import_module("dkim")
    except ImportError:
        raise DkimError(
            "[dkim] domain is set, so every message is signed, but dkimpy (which signs) is "
            "not installed. Install it with: pip install 'newsletter-sender[dkim]' (in a copy "
            "of this project: .venv/bin/pip install -e '.[dkim]'); nothing was sent"
        ) from None


@dataclass(frozen=True)
class Signer:
    """Signs messages for ``domain`` with the key at ``selector``."""

    domain: str
    selector: str
    algorithm: str
    key: bytes = b""  # as dkimpy takes it: PKCS#1 PEM (RSA), base64 of the seed (Ed25519)
    public: str = ""  # the p= of the DNS record

    def __repr__(self) -> str:  # never the key
        return f"Signer({self.selector}._domainkey.{self.domain}, {self.algorithm})"

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line ends, as MessageTemplate makes it) with its
        DKIM-Signature header in front."""
        head, _, body = message.partition(b"\r\n\r\n")
        algorithm = self.algorithm.encode("ascii")
        # dkimpy parses the headers; the body it would split into lines and join
        # again with CRLF, which ours already has, so it is handed over as it is.
        signing = _dkimpy().DKIM(head + b"\r\n\r\n", signature_algorithm=algorithm)
        signing.body = body
        header: bytes = signing.sign(
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self.key,
            include_headers=list(SIGNED),
            canonicalize=(b"relaxed", b"simple"),
        )
        return header + message

    @property
    def record(self) -> str:
        """The TXT record at ``selector._domainkey.domain``."""
        kind = "ed25519" if self.algorithm == "ed25519-sha256" else "rsa"
        return f"v=DKIM1; k={kind}; p={self.public}"


def signer_for(config: Config) -> Signer | None:
    """The signer ``[dkim]`` asks for, its key read and tried; None when signing is off.

    Raises DkimError, with the fix, when the key is missing or cannot sign."""
    c = config.dkim
    if not c.enabled:
        return None
    _dkimpy()
    signer = _signer(c, _key_text(c, config.root))
    try:
        signer.sign(b"From: <check@" + (c.domain or "").encode() + b">\r\n\r\ncheck\r\n")
    except Exception as exc:  # dkimpy's own errors, or pynacl missing for Ed25519
        raise DkimError(
            f"the DKIM key cannot sign ({type(exc).__name__}: {exc}). For ed25519-sha256 "
            "pynacl must be installed (pip install 'newsletter-sender[dkim]'); nothing was sent"
        ) from None
    return signer


def _key_text(c: DkimConfig, root: Path) -> bytes:
    from_env = os.environ.get(c.key_env, "")
    if from_env.strip():
        return from_env.encode("ascii", "replace")
    if c.key_file is not None:
        path = c.key_file if c.key_file.is_absolute() else root / c.key_file
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DkimError(
                f"cannot read the DKIM key file named in [dkim] key_file ({path}): "
                f"{exc.strerror or exc}; nothing was sent"
            ) from None
    raise DkimError(
        f"[dkim] domain is {c.domain}, so every message is signed, but there is no private "
        f"key: put it (PEM text) in the environment variable {c.key_env}, or name a file "
        "holding it in [dkim] key_file. To make one: openssl genpkey -algorithm RSA -pkeyopt "
        "rsa_keygen_bits:2048 -out dkim-private.pem (or -algorithm ed25519); nothing was sent"
    )


def _signer(c: DkimConfig, pem: bytes) -> Signer:
    serialization = importlib.import_module("cryptography.hazmat.primitives.serialization")
    asymmetric = importlib.import_module("cryptography.hazmat.primitives.asymmetric")
    where = f"the DKIM key ({c.key_env} or [dkim] key_file)"
    try:
        key: Any = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimError(
            f"{where} is not a private key in PEM form without a passphrase ({exc}): it "
            "should start with -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE "
            "KEY-----; nothing was sent"
        ) from None
    raw = serialization.Encoding.Raw
    if isinstance(key, asymmetric.ed25519.Ed25519PrivateKey):
        if c.algorithm != "ed25519-sha256":
            raise DkimError(f'{where} is an Ed25519 key: set [dkim] algorithm = "ed25519-sha256"')
        seed = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
        return Signer(
            c.domain or "",
            c.selector,
            c.algorithm,
            base64.b64encode(seed),
            base64.b64encode(public).decode("ascii"),
        )
    if isinstance(key, asymmetric.rsa.RSAPrivateKey):
        if c.algorithm != "rsa-sha256":
            raise DkimError(f'{where} is an RSA key: set [dkim] algorithm = "rsa-sha256"')
        if key.key_size < 1024:
            raise DkimError(
                f"{where} has {key.key_size} bits, which receivers ignore: make a 2048-bit one"
            )
        pkcs1 = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return Signer(
            c.domain or "", c.selector, c.algorithm, pkcs1, base64.b64encode(spki).decode()
        )
    raise DkimError(f"{where} is neither an RSA nor an Ed25519 key")


# -- DNS ------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A DNS TXT record to publish, and why."""

    what: str
    name: str
    value: str
    note: str = ""

    def quoted(self) -> str:
        """The value as DNS zone files and most panels take a long TXT: 255-byte strings."""
        chunks = [self.value[i : i + 255] for i in range(0, len(self.value), 255)] or [""]
        return " ".join(f'"{chunk}"' for chunk in chunks)


def _from_domain(config: Config) -> str:
    return parseaddr(config.sender)[1].rpartition("@")[2].lower()


def _spf_mechanism(relay: SmtpConfig) -> str:
    host = relay.host.lower().rstrip(".")
    if relay.auth == "microsoft" or host.endswith(("office365.com", "outlook.com")):
        return "include:spf.protection.outlook.com"
    if relay.auth == "google" or host.endswith(("gmail.com", "google.com", "googlemail.com")):
        return "include:_spf.google.com"
    return f"a:{host}"


def dns_records(config: Config, signer: Signer | None) -> list[Record]:
    """DKIM (when signing), SPF and DMARC records for the From address's domain."""
    domain = _from_domain(config)
    records: list[Record] = []
    if signer is not None:
        records.append(
            Record(
                "DKIM public key",
                f"{signer.selector}._domainkey.{signer.domain}",
                signer.record,
                "the receivers' check of every signature; publish it before the first send",
            )
        )
    mechanisms = list(dict.fromkeys(_spf_mechanism(r) for r in config.relays))
    records.append(
        Record(
            "SPF (a suggestion)",
            domain,
            f"v=spf1 {' '.join(mechanisms)} ~all",
            "a name has one SPF record: if there is one already, add "
            + " and ".join(mechanisms)
            + " to it rather than publishing a second. 'a:HOST' stands for a relay of your "
            "own; your mail provider may give an include: instead",
        )
    )
    records.append(
        Record(
            "DMARC (monitoring only)",
            f"_dmarc.{domain}",
            f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}",
            "p=none only asks receivers for daily reports (to dmarc-reports@, a mailbox to "
            "create, or another address of yours); move to p=quarantine once they show "
            "every sender passing",
        )
    )
    return records


def alignment(config: Config) -> list[Problem]:
    """A warning when the DKIM domain does not align with the From address's (DMARC)."""
    signing = (config.dkim.domain or "").lower().rstrip(".")
    if not signing:
        return []
    sender = _from_domain(config)
    if sender == signing or sender.endswith("." + signing) or signing.endswith("." + sender):
        return []
    return [
        Problem(
            "newsletter.toml",
            None,
            None,
            f"[dkim] domain {signing} is not aligned with the From address's domain {sender}: "
            "DMARC will not count the signature, and mail may go to junk",
            f"sign for {sender} (or a domain it is part of), or send from an address at {signing}",
            "warning",
        )
    ]
