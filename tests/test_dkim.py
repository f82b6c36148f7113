"""DKIM signing, end to end: `newsletter send` through aiosmtpd on 127.0.0.1, every
message received checked with dkimpy against the public key (DNS answered by a
function the test passes, as dkimpy allows); `newsletter dns`; and the warnings
and refusals a comms officer sees."""

from __future__ import annotations

import re
from pathlib import Path

import dkim
import pytest
from conftest import Cli
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from servers import Recorder, aiosmtpd
from test_send_smtp import BLOG, people, use_smtp

pytestmark = [pytest.mark.usefixtures("fixed_date"), pytest.mark.cli(catch_exceptions=False)]

DOMAIN = "riverside.example.org"  # the shipped From address is news@riverside.example.org
SELECTOR = "news2026"


@pytest.fixture(autouse=True)
def _token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Private unsubscribe links need a secret, where the workspace asks for them."""
    monkeypatch.setenv("NEWSLETTER_TOKEN_SECRET", "dkim-tests-0123456789abcdef")


def private_pem(algorithm: str) -> str:
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa-sha256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def sign_with(workspace: Path, algorithm: str, domain: str = DOMAIN, **extra: str) -> None:
    lines = [f'domain = "{domain}"', f'selector = "{SELECTOR}"', f'algorithm = "{algorithm}"']
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    with open(workspace / "newsletter.toml", "a", encoding="utf-8") as toml:
        toml.write("\n[dkim]\n" + "\n".join(lines) + "\n")


def published(cli: Cli) -> bytes:
    """The DKIM record `newsletter dns` prints, as the TXT record receivers would read."""
    result = cli("dns")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"name: {SELECTOR}._domainkey.{DOMAIN}" in text
    found = re.search(r"value: (v=DKIM1; k=\w+; p=[A-Za-z0-9+/=]+)", text)
    assert found is not None, text
    return found.group(1).encode("ascii")


@pytest.mark.parametrize("algorithm", ["ed25519-sha256", "rsa-sha256"])
def test_every_message_sent_verifies_and_a_changed_body_does_not(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    emails = people(workspace, 6)
    pem = private_pem(algorithm)
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY", pem)
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        sign_with(workspace, algorithm)
        result = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
    assert result.exit_code == 0, result.output
    record = published(cli)
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:  # noqa: ARG001 (dkimpy's signature)
        asked.append(name)
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else b""

    received = handler.by_recipient()
    assert sorted(received) == sorted(emails)
    for message in received.values():
        assert message.count(b"DKIM-Signature:") == 1
        head = message.split(b"\r\n\r\n", 1)[0]
        signature = head.split(b"DKIM-Signature:", 1)[1].split(b"\r\n", 1)[0]
        assert f"a={algorithm}".encode() in signature
        assert not re.search(rb"\bl=", head), "a body length would let anyone append"
        assert dkim.verify(message, dnsfunc=dns), message[:400]
        tampered = message.replace(b"Steve Kay", b"Steve Kai", 1)
        assert tampered != message and not dkim.verify(tampered, dnsfunc=dns)
        other_to = message.replace(b"\r\nTo: ", b"\r\nTo: someone-else ", 1)
        assert other_to != message
        assert not dkim.verify(other_to, dnsfunc=dns)
    assert asked and all(a == asked[0] for a in asked)
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", next(iter(received.values())))
    signed = re.search(rb"h=([^;]+);", unfolded)
    assert signed is not None
    names = [h.strip().lower() for h in signed.group(1).split(b":")]
    assert names[:5] == [b"from", b"to", b"subject", b"date", b"message-id"]
    assert {b"mime-version", b"content-type", b"list-unsubscribe"} <= set(names)
    assert pem.splitlines()[1] not in result.output


def test_dns_prints_dkim_spf_and_dmarc_and_never_the_key(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = private_pem("rsa-sha256")
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY", pem)
    toml = workspace / "newsletter.toml"
    text = toml.read_text(encoding="utf-8").replace(
        'host = "smtp.riverside.example.org"', 'host = "smtp.office365.com"\nauth = "microsoft"'
    )
    toml.write_text(text, encoding="utf-8")
    sign_with(workspace, "rsa-sha256")
    result = cli("dns")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "v=DKIM1; k=rsa; p=MII" in out
    assert f"name: {DOMAIN} value: v=spf1 include:spf.protection.outlook.com ~all" in out
    dmarc = f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}"
    assert f"name: _dmarc.{DOMAIN} value: {dmarc}" in out
    assert '" "' in out  # a 2048-bit key's record, split into 255-character strings
    for line in pem.splitlines()[1:-1]:
        assert line not in result.output


def test_dns_without_dkim_still_gives_spf_and_dmarc(cli: Cli) -> None:
    result = cli("dns")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "No DKIM signing" in out and "DKIM1" not in out
    assert "v=spf1 a:smtp.riverside.example.org ~all" in out and "p=none" in out


def test_a_missing_or_wrong_key_stops_the_send_before_anyone(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people(workspace, 3)
    monkeypatch.delenv("NEWSLETTER_DKIM_KEY", raising=False)
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        sign_with(workspace, "rsa-sha256")
        missing = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
        monkeypatch.setenv("NEWSLETTER_DKIM_KEY", private_pem("ed25519-sha256"))
        wrong = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
    assert missing.exit_code == 1 and "NEWSLETTER_DKIM_KEY" in missing.output
    assert "openssl genpkey" in missing.output and "Nothing was sent" in missing.output
    assert wrong.exit_code == 1
    assert 'set [dkim] algorithm = "ed25519-sha256"' in " ".join(wrong.output.split())
    assert handler.messages == []


def test_key_file_outside_the_folder(
    cli: Cli, workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    people(workspace, 2)
    key = tmp_path_factory.mktemp("secrets") / "dkim.pem"
    key.write_text(private_pem("ed25519-sha256"), encoding="ascii")
    handler = Recorder()
    with aiosmtpd(handler) as port:
        use_smtp(workspace, port)
        sign_with(workspace, "ed25519-sha256", key_file=str(key))
        result = cli("send", BLOG, "--list", "staff", "--transport", "smtp", "--yes")
    assert result.exit_code == 0, result.output
    record = published(cli)
    for message in handler.by_recipient().values():
        assert dkim.verify(message, dnsfunc=lambda _name, timeout=5: record)  # noqa: ARG005


def test_check_warns_when_dkim_and_from_domains_are_not_aligned(cli: Cli, workspace: Path) -> None:
    sign_with(workspace, "rsa-sha256", domain="mailer.example.net")
    result = cli("check", BLOG)
    out = " ".join(result.output.split())
    assert "[dkim] domain mailer.example.net is not aligned" in out
    assert f"domain {DOMAIN}: DMARC will not count the signature" in out
    aligned = workspace / "newsletter.toml"
    aligned.write_text(
        aligned.read_text(encoding="utf-8").replace("mailer.example.net", DOMAIN),
        encoding="utf-8",
    )
    assert "not aligned" not in cli("check", BLOG).output
