"""Signing in with OAuth2 (XOAUTH2) to Microsoft 365 and Google Workspace, against
real components on 127.0.0.1: a token endpoint served over HTTPS by the test
(a certificate made with openssl, trusted through the libraries' own settings:
MSAL's authority and ``verify``, google-auth's ``token_uri`` and a requests
session's ``verify``), and aiosmtpd with an XOAUTH2 mechanism that accepts
only the tokens that endpoint issued. The libraries are not patched."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from servers import Cert, Recorder, aiosmtpd, make_cert

from sender.config import SmtpConfig
from sender.message import Envelope
from sender.transports import Job, TransportError
from sender.transports.smtp import SmtpTransport, from_config
from sender.transports.smtp.oauth import GoogleTokens, MicrosoftTokens

TENANT = "riverside.example.org"
CLIENT_ID = "0b7e4c52-3f1a-4d8e-a9b0-6c2d1e3f4a5b"
SECRET = "app-secret-Value~123"
MAILBOX = "news@riverside.example.org"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Identity:
    """What the stand-in sign-in service knows, and every token it issued."""

    port: int = 0
    secrets: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: SECRET})
    expired_secrets: set[str] = field(default_factory=set)
    roles: list[str] = field(default_factory=lambda: ["SMTP.SendAsApp"])
    expires_in: int = 3600
    google_public: Any = None  # the service account's public key
    delegated: set[str] = field(default_factory=set)  # mailboxes the account may act as
    revoked_key: bool = False
    issued: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # tokens the mail server takes no more
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, prefix: str) -> str:
        with self.lock:
            claims = {"roles": self.roles, "n": len(self.issued), "aud": "outlook"}
            body = b64url(json.dumps(claims).encode())
            head = b64url(json.dumps({"alg": "none"}).encode())
            token = f"{head}.{body}.{prefix}{len(self.issued)}"
            self.issued.append(token)
            return token

    def valid(self, token: str) -> bool:
        with self.lock:
            return token in self.issued and token not in self.refused


class Handler(BaseHTTPRequestHandler):
    server: TokenServer

    def log_message(self, *_args: object) -> None:
        pass

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        ident = self.server.identity
        parts = self.path.strip("/").split("/")
        if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            tenant = parts[0]
            if tenant != TENANT:
                self.answer(
                    400,
                    {
                        "error": "invalid_tenant",
                        "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                        "error_codes": [90002],
                    },
                )
                return
            base = f"https://127.0.0.1:{ident.port}/{tenant}"
            self.answer(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                },
            )
            return
        self.answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        ident = self.server.identity
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        self.server.posts.append(form)
        if self.path == f"/{TENANT}/oauth2/v2.0/token":
            self.microsoft(ident, form)
        elif self.path == "/google/token":
            self.google(ident, form)
        else:
            self.answer(404, {"error": "not_found"})

    def microsoft(self, ident: Identity, form: dict[str, str]) -> None:
        client = form.get("client_id", "")
        if client not in ident.secrets:
            self.answer(400, {"error": "unauthorized_client", "error_codes": [700016]})
            return
        if form.get("client_secret") != ident.secrets[client]:
            self.answer(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
            )
            return
        if client in ident.expired_secrets:
            self.answer(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000222: The provided client secret keys "
                    f"for app '{client}' are expired.",
                    "error_codes": [7000222],
                },
            )
            return
        assert form.get("scope") == "https://outlook.office365.com/.default"
        assert form.get("grant_type") == "client_credentials"
        self.answer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": ident.expires_in,
                "access_token": ident.issue("ms"),
            },
        )

    def google(self, ident: Identity, form: dict[str, str]) -> None:
        assert form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        head, body, signature = form["assertion"].split(".")
        try:
            ident.google_public.verify(
                unb64url(signature),
                f"{head}.{body}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            signed = not ident.revoked_key
        except Exception:
            signed = False
        if not signed:
            self.answer(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
            return
        claims = json.loads(unb64url(body))
        assert claims["iss"] == "newsletter@riverside-news.iam.gserviceaccount.com"
        assert claims["scope"] == "https://mail.google.com/"
        if claims.get("sub") not in ident.delegated:
            self.answer(
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens "
                    "using this method, or client not authorized for any of the scopes "
                    "requested.",
                },
            )
            return
        self.answer(
            200,
            {"access_token": ident.issue("ya29."), "expires_in": 3599, "token_type": "Bearer"},
        )


class TokenServer(ThreadingHTTPServer):
    """The stand-in sign-in service, over HTTPS on 127.0.0.1, stopped by its test."""

    daemon_threads = True

    def __init__(self, identity: Identity, cert: Cert) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.identity = identity
        self.posts: list[dict[str, str]] = []
        identity.port = self.server_address[1]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert.cert, cert.key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.url = f"https://127.0.0.1:{identity.port}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class XOAuth2:
    """aiosmtpd's AUTH XOAUTH2: the token must be one the sign-in service issued and
    still valid, for ``mailbox``; refusals as Exchange Online or Gmail word them."""

    def __init__(self, identity: Identity, *, style: str, mailbox: str = MAILBOX) -> None:
        self.identity = identity
        self.style = style
        self.mailbox = mailbox
        self.smtp_auth_disabled = False
        self.logins: list[str] = []

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        blob = args[1] if len(args) > 1 else ""
        fields = dict(
            part.split("=", 1)
            for part in base64.b64decode(blob).decode().split("\x01")
            if "=" in part
        )
        token = fields.get("auth", "").removeprefix("Bearer ")
        ok = fields.get("user") == self.mailbox and self.identity.valid(token)
        if ok and self.smtp_auth_disabled:
            return AuthResult(
                success=False,
                handled=False,
                message="535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                "is disabled for the Mailbox.",
            )
        if ok:
            self.logins.append(token)
            return AuthResult(success=True)
        if self.style == "google":
            error = {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}
            await server.challenge_auth(json.dumps(error))
            return AuthResult(
                success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
            )
        return AuthResult(
            success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
        )


class Mailroom(Recorder):
    """A Recorder that also signs people in by XOAUTH2."""

    def __init__(self, auth: XOAuth2) -> None:
        super().__init__()
        self.auth = auth

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self.auth.auth_XOAUTH2(server, args)


@pytest.fixture(autouse=True)
def _no_ca_bundle_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) override a session's own
    ``verify``, so with either set the test's certificate would not be the one trusted."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return make_cert(tmp_path_factory.mktemp("tls"), "login.test", "DNS:localhost,IP:127.0.0.1")


def relay(port: int, auth: str, **overrides: Any) -> SmtpConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "auth": auth,
        "username": MAILBOX,
        "connections": 1,
        "rate": 0,
        "timeout": 5.0,
        "tenant": TENANT,
        "client_id": CLIENT_ID,
    }
    settings.update(overrides)
    return SmtpConfig(**settings)


def microsoft(
    cfg: SmtpConfig, server: TokenServer, cert: Cert, secret: str = SECRET
) -> MicrosoftTokens:
    return MicrosoftTokens(cfg, credential=secret, authority_host=server.url, verify=str(cert.cert))


def transport(cfg: SmtpConfig, tokens: Any, lines: list[str] | None = None) -> SmtpTransport:
    log = lines.append if lines is not None else None
    return SmtpTransport(
        cfg, password=None, tokens=tokens, log=log, backoff=0.05, local_hostname="tests.example"
    )


def jobs(n: int) -> Iterator[Job]:
    for i in range(n):
        to = f"person{i}@example.net"
        data = f"From: <{MAILBOX}>\r\nTo: <{to}>\r\nSubject: {i}\r\n\r\nHello {i}\r\n".encode()
        yield Job(Envelope(MAILBOX, to, f"<{i}@tests>"), data, key=i)


def send(t: SmtpTransport, n: int) -> dict[object, str]:
    done: dict[object, str] = {}
    t.send_all(
        jobs(n),
        on_start=lambda _job: True,
        on_done=lambda job, outcome: done.__setitem__(job.key, outcome.state),
        stop=threading.Event(),
    )
    return done


# ---------------------------------------------------------------------------
# Microsoft 365


def test_microsoft_token_signs_in_is_cached_and_never_logged(cert: Cert) -> None:
    ident = Identity()
    auth = XOAuth2(ident, style="microsoft")
    handler = Mailroom(auth)
    lines: list[str] = []
    with TokenServer(ident, cert) as server, aiosmtpd(handler, auth_require_tls=False) as port:
        cfg = relay(port, "microsoft", connections=2)
        t = transport(cfg, microsoft(cfg, server, cert), lines)
        t.check()
        done = send(t, 6)
    assert set(done.values()) == {"sent"} and len(done) == 6
    assert len(handler.messages) == 6
    # One token for the preflight and both connections: MSAL's cache, not a fetch each time.
    assert len(ident.issued) == 1 and len(server.posts) == 1
    assert len(auth.logins) >= 2 and set(auth.logins) == set(ident.issued)
    log = "\n".join(lines)
    assert "AUTH XOAUTH2 ********" in log
    token = ident.issued[0]
    for secret in (token, SECRET, base64.b64encode(f"auth=Bearer {token}".encode()).decode()):
        assert secret not in log
    assert SECRET not in repr(t) and SECRET not in repr(t._tokens)


def test_a_token_refused_as_expired_is_fetched_anew_and_the_send_goes_on(cert: Cert) -> None:
    ident = Identity()
    auth = XOAuth2(ident, style="microsoft")
    handler = Mailroom(auth)
    with TokenServer(ident, cert) as server, aiosmtpd(handler, auth_require_tls=False) as port:
        cfg = relay(port, "microsoft")
        tokens = microsoft(cfg, server, cert)
        t = transport(cfg, tokens)
        t.check()
        before = len(auth.logins)
        first = ident.issued[0]
        ident.refused.add(first)  # expired at the server (or revoked), still in the cache
        assert tokens.token() == first
        done = send(t, 3)
    assert set(done.values()) == {"sent"}
    assert len(ident.issued) == 2 and auth.logins[before:] == [ident.issued[1]]


def test_a_token_near_its_expiry_is_refreshed_before_it_is_used(cert: Cert) -> None:
    ident = Identity(expires_in=120)  # MSAL fetches anew within 5 minutes of expiry
    with TokenServer(ident, cert) as server:
        tokens = microsoft(relay(1, "microsoft"), server, cert)
        one, two = tokens.token(), tokens.token()
        ident.expires_in = 3600
        three, four = tokens.token(), tokens.token()
    assert one != two and two != three and three == four
    assert len(server.posts) == 3


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"secret": "a-revoked-secret"},
            "did not accept the client secret in NEWSLETTER_SMTP_CLIENT_SECRET",
        ),
        ({"expired": True}, "client secret in NEWSLETTER_SMTP_CLIENT_SECRET has expired"),
        ({"tenant": "rivrside.example.org"}, "does not know the tenant 'rivrside.example.org'"),
        ({"roles": []}, "not been granted the SMTP.SendAsApp permission"),
        ({"client_id": "11111111-2222-3333-4444-555555555555"}, "no app with the client ID"),
    ],
)
def test_microsoft_sign_in_problems_stop_the_preflight_in_words(
    cert: Cert, change: dict[str, Any], words: str
) -> None:
    ident = Identity()
    if change.get("expired"):
        ident.expired_secrets.add(CLIENT_ID)
    if "roles" in change:
        ident.roles = change["roles"]
    handler = Mailroom(XOAuth2(ident, style="microsoft"))
    with TokenServer(ident, cert) as server, aiosmtpd(handler, auth_require_tls=False) as port:
        overrides = {k: change[k] for k in ("tenant", "client_id") if k in change}
        cfg = relay(port, "microsoft", **overrides)
        t = transport(cfg, microsoft(cfg, server, cert, change.get("secret", SECRET)))
        with pytest.raises(TransportError) as caught:
            t.check()
    message = str(caught.value)
    assert words in message, message
    assert "Entra admin centre" in message
    assert SECRET not in message and "a-revoked-secret" not in message
    assert handler.messages == []


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("disabled", "SMTP AUTH turned off for the mailbox news@riverside.example.org"),
        ("not-registered", "New-ServicePrincipal -AppId " + CLIENT_ID),
    ],
)
def test_exchange_refusing_the_app_is_said_with_the_admin_step(
    cert: Cert, setup: str, words: str
) -> None:
    ident = Identity()
    auth = XOAuth2(ident, style="microsoft", mailbox="someone-else@riverside.example.org")
    if setup == "disabled":
        auth = XOAuth2(ident, style="microsoft")
        auth.smtp_auth_disabled = True
    with (
        TokenServer(ident, cert) as server,
        aiosmtpd(Mailroom(auth), auth_require_tls=False) as port,
    ):
        cfg = relay(port, "microsoft")
        t = transport(cfg, microsoft(cfg, server, cert))
        with pytest.raises(TransportError, match="Exchange") as caught:
            t.check()
    assert words in str(caught.value)
    assert len(ident.issued) == 2  # refused once, fetched anew once, refused again: no loop


def test_a_server_without_xoauth2_is_named(cert: Cert) -> None:
    ident = Identity()
    with (
        TokenServer(ident, cert) as server,
        aiosmtpd(
            Recorder(), auth_require_tls=False, authenticator=lambda *_a: AuthResult(success=False)
        ) as port,
    ):
        cfg = relay(port, "microsoft")
        with pytest.raises(TransportError, match="XOAUTH2") as caught:
            transport(cfg, microsoft(cfg, server, cert)).check()
    assert "smtp.office365.com" in str(caught.value)


def test_microsoft_settings_and_secret_come_from_config_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NEWSLETTER_SMTP_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("NEWSLETTER_SMTP_CERTIFICATE", raising=False)
    with pytest.raises(TransportError, match="tenant and client_id"):
        from_config(relay(1, "microsoft", tenant=None, client_id=None))
    with pytest.raises(TransportError, match="username"):
        from_config(relay(1, "microsoft", username=None))
    with pytest.raises(TransportError, match="export NEWSLETTER_SMTP_CLIENT_SECRET="):
        from_config(relay(1, "microsoft"))
    monkeypatch.setenv("NEWSLETTER_SMTP_CLIENT_SECRET", SECRET)
    t = from_config(relay(1, "microsoft"))
    assert isinstance(t._tokens, MicrosoftTokens) and SECRET not in repr(t._tokens)
    half = tmp_path / "app.pem"
    half.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("NEWSLETTER_SMTP_CERTIFICATE", str(half))
    with pytest.raises(TransportError, match="private key and its certificate"):
        from_config(relay(1, "microsoft"))


# ---------------------------------------------------------------------------
# Google Workspace


@pytest.fixture(scope="module")
def google_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(key: rsa.RSAPrivateKey, server: TokenServer) -> dict[str, str]:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "riverside-news",
        "private_key_id": "abc123",
        "private_key": pem,
        "client_email": "newsletter@riverside-news.iam.gserviceaccount.com",
        "client_id": "109876543210987654321",
        "token_uri": f"{server.url}/google/token",
    }


def test_google_service_account_acts_as_the_mailbox(
    cert: Cert, google_key: rsa.RSAPrivateKey
) -> None:
    ident = Identity(google_public=google_key.public_key(), delegated={MAILBOX})
    auth = XOAuth2(ident, style="google")
    handler = Mailroom(auth)
    lines: list[str] = []
    with TokenServer(ident, cert) as server, aiosmtpd(handler, auth_require_tls=False) as port:
        cfg = relay(port, "google")
        key = service_account(google_key, server)
        tokens = GoogleTokens(cfg, key=key, verify=str(cert.cert))
        t = transport(cfg, tokens, lines)
        t.check()
        done = send(t, 4)
        ident.refused.add(ident.issued[0])  # revoked at the server: fetched anew
        again = send(t, 2)
    assert set(done.values()) == {"sent"} == set(again.values())
    assert len(handler.messages) == 6 and len(ident.issued) == 2
    assert auth.logins[-1] == ident.issued[1]
    log = "\n".join(lines)
    assert "AUTH XOAUTH2 ********" in log
    assert ident.issued[0] not in log and key["private_key"][40:80] not in log
    assert key["private_key"][40:80] not in repr(tokens)


@pytest.mark.parametrize(
    ("problem", "words"),
    [
        ("not-delegated", "Manage Domain Wide Delegation"),
        ("revoked-key", "the key was deleted or the service account disabled"),
    ],
)
def test_google_sign_in_problems_stop_the_preflight_in_words(
    cert: Cert, google_key: rsa.RSAPrivateKey, problem: str, words: str
) -> None:
    ident = Identity(
        google_public=google_key.public_key(),
        delegated=set() if problem == "not-delegated" else {MAILBOX},
        revoked_key=problem == "revoked-key",
    )
    handler = Mailroom(XOAuth2(ident, style="google"))
    with TokenServer(ident, cert) as server, aiosmtpd(handler, auth_require_tls=False) as port:
        cfg = relay(port, "google")
        tokens = GoogleTokens(cfg, key=service_account(google_key, server), verify=str(cert.cert))
        with pytest.raises(TransportError, match=words) as caught:
            transport(cfg, tokens).check()
    assert "https://mail.google.com/" in str(caught.value) or problem == "revoked-key"
    assert handler.messages == []


def test_google_key_file_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NEWSLETTER_GOOGLE_KEY_FILE", raising=False)
    with pytest.raises(TransportError, match="export NEWSLETTER_GOOGLE_KEY_FILE="):
        from_config(relay(1, "google"))
    not_a_key = tmp_path / "key.json"
    not_a_key.write_text('{"type": "authorized_user"}')
    monkeypatch.setenv("NEWSLETTER_GOOGLE_KEY_FILE", str(not_a_key))
    with pytest.raises(TransportError, match="not a service account's JSON key"):
        from_config(relay(1, "google"))
    monkeypatch.setenv("NEWSLETTER_GOOGLE_KEY_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(TransportError, match="cannot read the key file"):
        from_config(relay(1, "google"))


def test_tokens_are_fetched_once_for_many_connections_at_once(cert: Cert) -> None:
    ident = Identity()
    handler = Mailroom(XOAuth2(ident, style="microsoft"))
    with TokenServer(ident, cert) as server, aiosmtpd(handler, auth_require_tls=False) as port:
        cfg = relay(port, "microsoft", connections=4)
        t = transport(cfg, microsoft(cfg, server, cert))
        started = time.monotonic()
        done = send(t, 12)
    assert set(done.values()) == {"sent"} and len(done) == 12
    assert len(server.posts) == 1, "one sign-in shared by every connection"
    assert time.monotonic() - started < 30
